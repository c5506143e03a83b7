//! The rule data against the seed documents: every ACR variant, procedure row and category of
//! seed 003_*, the category rating ranges, and the wording of every practice-parameter item and
//! payer criterion and code.

use spinetriage_criteria::Rules;
use spinetriage_tests::shared_seed;

fn norm(s: &str) -> String {
    let s: String = s
        .chars()
        .filter(|c| !matches!(c, '*' | '"' | '“' | '”'))
        .map(|c| match c {
            '’' => '\'',
            '–' => '-',
            c => c,
        })
        .collect();
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A variant of the seed's rating tables: (number, title, [(procedure, category)]).
type SeedVariant = (u8, String, Vec<(String, String)>);

fn seed_variants(text: &str) -> Vec<SeedVariant> {
    let head = &text[..text
        .find("Summary of Literature Review")
        .expect("seed has a literature review")];
    let lines: Vec<&str> = head.lines().map(str::trim).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(n) = lines[i]
            .strip_prefix("Variant ")
            .and_then(|r| r.strip_suffix(':'))
            .and_then(|n| n.parse::<u8>().ok())
        else {
            i += 1;
            continue;
        };
        i += 1;
        let mut title = Vec::new();
        while lines[i] != "Procedure" {
            if !lines[i].is_empty() {
                title.push(lines[i]);
            }
            i += 1;
        }
        i += 1;
        let mut rows: Vec<&str> = Vec::new();
        while i < lines.len() && !lines[i].starts_with("Variant ") {
            if !lines[i].is_empty() && lines[i] != "Appropriateness Category" {
                rows.push(lines[i]);
            }
            i += 1;
        }
        let procs = rows
            .chunks(2)
            .map(|c| (c[0].to_string(), c.get(1).unwrap_or(&"").to_string()))
            .collect();
        out.push((n, title.join(" "), procs));
    }
    out
}

#[test]
fn acr_variants_match_seed_003_row_by_row() {
    let Some(text) = shared_seed("003") else {
        return;
    };
    let rules = Rules::embedded().unwrap();
    let seed = seed_variants(&text);
    assert_eq!(seed.len(), 9, "the seed has nine variants");
    assert_eq!(rules.acr.variants.len(), 9);
    let mut rows = 0;
    for ((n, title, procs), v) in seed.iter().zip(&rules.acr.variants) {
        assert_eq!(*n, v.variant);
        assert_eq!(title, &v.title, "variant {n} title");
        let ours: Vec<(String, String)> = v
            .procedures
            .iter()
            .map(|p| (p.procedure.clone(), p.category.clone()))
            .collect();
        assert_eq!(procs, &ours, "variant {n} procedures");
        for (_, cat) in &ours {
            assert!(rules.acr.categories.contains_key(cat), "{cat}");
        }
        rows += ours.len();
    }
    assert_eq!(rows, 71, "rating-table rows in the seed");
}

#[test]
fn acr_rating_ranges_match_the_seed_definitions() {
    let Some(text) = shared_seed("003") else {
        return;
    };
    let rules = Rules::embedded().unwrap();
    let defs = &text[text
        .find("Appropriateness Category Names and Definitions")
        .expect("definitions table")..];
    // The table lists the four names, then the four ratings in the same order.
    let ratings: Vec<[u8; 2]> = defs
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == ' ' || "or".contains(c))
        })
        .take(4)
        .map(|l| {
            let d: Vec<u8> = l
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|s| s.parse().ok())
                .collect();
            [d[0], *d.last().unwrap()]
        })
        .collect();
    let order = [
        "Usually Appropriate",
        "May Be Appropriate",
        "May Be Appropriate (Disagreement)",
        "Usually Not Appropriate",
    ];
    assert_eq!(ratings.len(), 4, "{ratings:?}");
    for (name, r) in order.iter().zip(&ratings) {
        assert_eq!(rules.acr.categories[*name], *r, "{name}");
    }
}

/// The wording of an item up to its first qualifier must be the seed's own.
fn assert_quoted(seed: &str, text: &str, what: &str) {
    let t = norm(text);
    let head: String = t
        .split([':', ';'])
        .next()
        .unwrap()
        .split(" (")
        .next()
        .unwrap()
        .chars()
        .take(60)
        .collect();
    assert!(seed.contains(&head), "{what}: {head:?} is not in the seed");
}

#[test]
fn practice_parameter_and_payer_items_quote_their_seeds() {
    let (Some(pp), Some(regence), Some(bcbs)) =
        (shared_seed("000"), shared_seed("002"), shared_seed("004"))
    else {
        return;
    };
    let rules = Rules::embedded().unwrap();
    let pp = norm(&pp);
    let p = &rules.practice;
    for it in p
        .indications
        .iter()
        .chain(&p.absolute_contraindications)
        .chain(&p.relative_contraindications)
        .chain(&p.leakage_risks)
    {
        assert_quoted(&pp, &it.text, &format!("practice parameter {}", it.id));
    }
    assert_eq!(p.indications.len(), 6);
    assert_eq!(p.absolute_contraindications.len(), 4);
    assert_eq!(p.relative_contraindications.len(), 6);
    for (payer, seed) in rules.payers.iter().zip([norm(&regence), norm(&bcbs)]) {
        for c in &payer.criteria {
            assert_quoted(&seed, &c.text, &format!("{} {}", payer.name, c.id));
        }
        for code in &payer.codes {
            assert!(
                seed.contains(&code.code.to_lowercase()),
                "{} code {}",
                payer.name,
                code.code
            );
        }
    }
    // Regence I.A.5 lists a-k.
    let five = rules.payers[0]
        .criteria
        .iter()
        .filter(|c| c.id.starts_with("I.A.5."))
        .count();
    assert_eq!(five, 11);
}
