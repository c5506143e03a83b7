//! Markdown and HTML from the document model.

use crate::doc::Block;
use crate::image::{base64, Sagittal};

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown; images are referenced as `sagittal-<n>.png` next to the file.
pub fn markdown(blocks: &[Block], images: &[Option<Sagittal>]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(d, t) => s += &format!("{} {t}\n\n", "#".repeat(*d as usize)),
            Block::Para(t) => s += &format!("{t}\n\n"),
            Block::List(v) => {
                for i in v {
                    s += &format!("- {}\n", i.replace('\n', " "));
                }
                s += "\n";
            }
            Block::Table {
                head,
                rows,
                classes,
            } => {
                s += &format!(
                    "| {} |\n",
                    head.iter()
                        .map(|h| md_cell(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
                s += &format!("|{}\n", "---|".repeat(head.len()));
                for (r, c) in rows.iter().zip(classes) {
                    let mut cells: Vec<String> = r.iter().map(|x| md_cell(x)).collect();
                    if *c == "flagged" {
                        cells[0] = format!("**{}**", cells[0]);
                    }
                    s += &format!("| {} |\n", cells.join(" | "));
                }
                s += "\n";
            }
            Block::Image(n) => {
                if images.get(*n).is_some_and(Option::is_some) {
                    s += &format!(
                        "![Sagittal reformat: outlines green (normal), red (fracture or deformity), amber (not evaluable)](sagittal-{}.png)\n\n",
                        n + 1
                    );
                }
            }
        }
    }
    s
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn svg(img: &Sagittal) -> String {
    let mut s = format!(
        r#"<svg class="sag" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="sagittal reformat with levels"><image width="{w}" height="{h}" href="data:image/png;base64,{b}"/>"#,
        w = img.width,
        h = img.height,
        b = base64(&img.png)
    );
    for l in &img.levels {
        let colour = match l.state {
            "flagged" => "#ff3030",
            "not_evaluable" => "#f0a800",
            _ => "#30d070",
        };
        for line in &l.lines_px {
            s += &format!(
                r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5"/>"#,
                line[0][0], line[0][1], line[1][0], line[1][1]
            );
        }
        // Label in front of the body (anterior is to the left), clear of its outline.
        let [x, y] = l.center_px;
        let front = l
            .lines_px
            .iter()
            .flat_map(|p| [p[0][0], p[1][0]])
            .fold(x - 20.0, f64::min);
        s += &format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{colour}" font-family="sans-serif" font-size="13" font-weight="bold" stroke="black" stroke-width="0.4">{}</text>"#,
            front - 6.0,
            y + 4.0,
            esc(&l.label)
        );
    }
    s + "</svg>"
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1em;font-size:13px}\
td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}\
th{background:#eee}tr.flagged td{background:#fde0e0;font-weight:600}\
tr.not_evaluable td{background:#fff3d6}tr.met td:nth-child(2){color:#0a6b2a;font-weight:600}\
tr.unknown td:nth-child(2){color:#946200}.sag{background:#000;display:block;margin:1em 0}\
h4{margin-bottom:0.2em}";

/// Self-contained HTML: styles inline, images as data URIs.
pub fn html(blocks: &[Block], images: &[Option<Sagittal>]) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>spinetriage report</title><style>{CSS}</style></head><body>\n"
    );
    for b in blocks {
        match b {
            Block::Heading(d, t) => s += &format!("<h{d}>{}</h{d}>\n", esc(t)),
            Block::Para(t) => s += &format!("<p>{}</p>\n", esc(t)),
            Block::List(v) => {
                s += "<ul>";
                for i in v {
                    s += &format!("<li>{}</li>", esc(i));
                }
                s += "</ul>\n";
            }
            Block::Table {
                head,
                rows,
                classes,
            } => {
                s += "<table><thead><tr>";
                for h in head {
                    s += &format!("<th>{}</th>", esc(h));
                }
                s += "</tr></thead><tbody>";
                for (r, c) in rows.iter().zip(classes) {
                    s += &format!("<tr class=\"{c}\">");
                    for x in r {
                        s += &format!("<td>{}</td>", esc(x));
                    }
                    s += "</tr>";
                }
                s += "</tbody></table>\n";
            }
            Block::Image(n) => {
                if let Some(Some(img)) = images.get(*n) {
                    s += &svg(img);
                    s += "\n";
                }
            }
        }
    }
    s + "</body></html>\n"
}
