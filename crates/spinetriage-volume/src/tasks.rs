//! Scheduling of per-level work across cores.

use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Maps `f` over `items` in parallel, one task per item, handing out the costliest first,
/// and returns the results in the items' order.
///
/// Per-level work is lumpy (the sacrum or L5 can take as long as three other levels
/// together). Each worker takes the next item from one shared queue sorted by cost, so the last
/// items to start are the cheapest and the workers finish together (longest-processing-time
/// first). rayon's own splitting, even one item per task, hands the second worker the middle of
/// the order, so a middling item can be the last to start. (With few items of equal cost no
/// order helps: the items themselves must be split, as the morphometry's rays are.)
pub fn par_map_costliest_first<T, R, C, F>(items: &[T], cost: C, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    C: Fn(usize, &T) -> f64,
    F: Fn(usize, &T) -> R + Sync + Send,
{
    let costs: Vec<f64> = items.iter().enumerate().map(|(i, t)| cost(i, t)).collect();
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]));
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().clamp(1, items.len().max(1));
    // A worker that starts after the queue is empty (its thread was busy) returns at once.
    let mut done: Vec<(usize, R)> = (0..workers)
        .into_par_iter()
        .with_max_len(1)
        .flat_map_iter(|_| {
            std::iter::from_fn(|| {
                let i = *order.get(next.fetch_add(1, Ordering::Relaxed))?;
                Some((i, f(i, &items[i])))
            })
            .collect::<Vec<_>>()
        })
        .collect();
    done.sort_by_key(|d| d.0);
    done.into_iter().map(|d| d.1).collect()
}

#[cfg(test)]
mod tests {
    use super::par_map_costliest_first;

    #[test]
    fn results_come_back_in_item_order_whatever_the_costs() {
        let items: Vec<u32> = (0..50).collect();
        let out =
            par_map_costliest_first(&items, |i, _| ((i * 37) % 11) as f64, |i, &t| (i, t * 2));
        assert_eq!(out.len(), 50);
        for (k, (i, v)) in out.into_iter().enumerate() {
            assert_eq!((i, v), (k, 2 * k as u32));
        }
    }

    #[test]
    fn items_start_in_order_of_decreasing_cost() {
        let costs = [3.0, 9.0, 1.0, 7.0, 5.0];
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let started = std::sync::Mutex::new(Vec::new());
            let out = pool.install(|| {
                par_map_costliest_first(
                    &costs,
                    |_, c| *c,
                    |i, c| {
                        started.lock().unwrap().push(i);
                        c * 2.0
                    },
                )
            });
            assert_eq!(out, vec![6.0, 18.0, 2.0, 14.0, 10.0]);
            let started = started.into_inner().unwrap();
            if threads == 1 {
                assert_eq!(started, vec![1, 3, 4, 0, 2]);
            } else {
                // Start order depends on timing with two workers; each item runs exactly once.
                let mut all = started.clone();
                all.sort();
                assert_eq!(all, vec![0, 1, 2, 3, 4]);
            }
        }
        let none: Vec<f64> = par_map_costliest_first(&[] as &[f64], |_, c| *c, |_, c| *c);
        assert!(none.is_empty());
    }
}
