//! Scheduling of per-level work across cores.

use rayon::prelude::*;

/// Maps `f` over `items` in parallel, one task per item, handing out the costliest first,
/// and returns the results in the items' order.
///
/// Per-level work is lumpy (the sacrum or L5 can take as long as three other levels
/// together); rayon's default splitting hands out contiguous halves, so a costly item
/// started last keeps every other core idle while it runs.
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
    let mut done: Vec<(usize, R)> = order
        .par_iter()
        .with_max_len(1)
        .map(|&i| (i, f(i, &items[i])))
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
}
