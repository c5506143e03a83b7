//! Development tool: Dice of our body masks against expert masks (NIfTI pairs).
//! `cargo run --release -p spinetriage-segment --example eval_masks -- DIR [OUTDIR]`
use spinetriage_dicom::{Limits, SeriesKind};
use spinetriage_segment::segment_volume;
use spinetriage_volume::read_nifti;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(&args[1]);
    let dump = args.get(2).map(PathBuf::from);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("_t2.nii.gz"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        let img = read_nifti(&f, SeriesKind::MrT2, &Limits::default()).unwrap();
        let mp = PathBuf::from(f.to_string_lossy().replace("_t2.", "_bodies."));
        let m = read_nifti(&mp, SeriesKind::MrOther, &Limits::default()).unwrap();
        if std::env::var("ST_DEBUG").is_ok() {
            debug_candidates(&img);
        }
        let t = std::time::Instant::now();
        let seg = match segment_volume(&img, None) {
            Ok(s) => s,
            Err(e) => {
                println!("{}: {e}", f.display());
                continue;
            }
        };
        let el = t.elapsed();
        let view = &seg.view;
        let mv = view.view(&m.data);
        let nlab = m.data.iter().fold(0f32, |a, b| a.max(*b)) as usize;
        let mut dices = Vec::new();
        let mut ours_label = vec![0u8; 0];
        let _ = &mut ours_label;
        for l in 1..=nlab {
            let exp: usize = mv.iter().filter(|v| (**v as usize) == l).count();
            let mut best = (0.0, usize::MAX);
            for (bi, b) in seg.bodies.iter().enumerate() {
                let inter = b.mask.voxels().filter(|p| mv[*p] as usize == l).count();
                let d = 2.0 * inter as f64 / (exp + b.mask.count()) as f64;
                if d > best.0 {
                    best = (d, bi);
                }
            }
            dices.push(best.0);
            if best.1 != usize::MAX {
                let b = &seg.bodies[best.1];
                let inter = b.mask.voxels().filter(|p| mv[*p] as usize == l).count();
                let (fp, fnv) = (b.mask.count() - inter, exp - inter);
                if std::env::var("ST_PR").is_ok() {
                    // lateral extent comparison
                    let lr_ours: Vec<usize> = b.mask.voxels().map(|p| p[2]).collect();
                    let lr_exp: Vec<usize> = mv
                        .indexed_iter()
                        .filter(|(_, v)| **v as usize == l)
                        .map(|(p, _)| p.2)
                        .collect();
                    println!(
                        "   l{l} exp {exp} ours {} fp {fp} fn {fnv} lr ours {}..{} exp {}..{}",
                        b.mask.count(),
                        lr_ours.iter().min().unwrap(),
                        lr_ours.iter().max().unwrap(),
                        lr_exp.iter().min().unwrap(),
                        lr_exp.iter().max().unwrap()
                    );
                }
            }
        }
        let mean = dices.iter().sum::<f64>() / dices.len() as f64;
        all.push(mean);
        println!(
            "{} bodies {} cands {} {:.0} ms dice {:?} mean {:.3}",
            f.file_name().unwrap().to_string_lossy(),
            seg.bodies.len(),
            seg.candidates,
            el.as_secs_f64() * 1e3,
            dices
                .iter()
                .map(|d| (d * 100.0).round() as i32)
                .collect::<Vec<_>>(),
            mean
        );
        if let Some(out) = &dump {
            std::fs::create_dir_all(out).unwrap();
            let d = view.dims;
            let mut raw = vec![0u8; d[0] * d[1] * d[2]];
            for (bi, b) in seg.bodies.iter().enumerate() {
                for p in b.mask.voxels() {
                    raw[(p[0] * d[1] + p[1]) * d[2] + p[2]] = bi as u8 + 1;
                }
            }
            let name = f
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".nii.gz", "");
            std::fs::write(
                out.join(format!("{name}_{}x{}x{}.ours", d[0], d[1], d[2])),
                &raw,
            )
            .unwrap();
        }
    }
    println!(
        "overall mean dice {:.3}",
        all.iter().sum::<f64>() / all.len().max(1) as f64
    );
}

#[allow(dead_code)]
fn debug_candidates(img: &spinetriage_volume::Volume) {
    use spinetriage_segment::{detect, work::Coarse, CanonicalView};
    let view = CanonicalView::new(&img.grid);
    let coarse = Coarse::new(view.view(&img.data), view.spacing_mm, 1.4);
    let mut c = detect::candidates(&coarse);
    c.sort_by_key(|k| std::cmp::Reverse(k.stability));
    for k in c.iter().take(40) {
        println!(
            "  si {:6.1} ap {:6.1} lr {:6.1} h {:5.1} vol {:7.0} stab {:4} planes {}",
            k.centroid_mm[0],
            k.centroid_mm[1],
            k.centroid_mm[2],
            k.height_mm,
            k.volume_mm3,
            k.stability,
            k.sections.len()
        );
    }
    for k in detect::chain(&c, coarse.spacing_mm[2]) {
        println!(
            "  chain si {:6.1} ap {:6.1} lr {:6.1} stab {}",
            k.centroid_mm[0], k.centroid_mm[1], k.centroid_mm[2], k.stability
        );
    }
}
