//! Hand-built SVG charts for the console: a line chart for the 7-day trends and a bar chart
//! for the 24-hour volume.
//!
//! They are plain inline `<svg>`, so a page needs no script and no asset to draw them, and the
//! same data always gives the same bytes (tests compare them). Every number written into the
//! SVG is finite and inside the `viewBox`: a missing, NaN or infinite value is a gap, never a
//! coordinate. Every text (titles, labels) goes through maud, so it is escaped.
//!
//! SVG elements are written with explicit end tags (`<line …></line>`): inside `<svg>` the
//! HTML parser does not know `line` is empty, and an unclosed one would swallow its siblings.

use maud::{html, Markup};

/// Sizes below these leave no room for the plot; larger ones than `MAX_SIDE` are clamped too.
const MIN_WIDTH: u32 = 160;
const MIN_HEIGHT: u32 = 80;
const MAX_SIDE: u32 = 4000;

/// Room around the plot: y labels on the left, x labels below.
const PAD_LEFT: f64 = 56.0;
const PAD_RIGHT: f64 = 12.0;
const PAD_TOP: f64 = 12.0;
const PAD_BOTTOM: f64 = 22.0;

/// Axis labels longer than this are cut, so they stay inside the picture.
const MAX_LABEL_CHARS: usize = 16;

const AXIS: &str = "#8a8f98";
const TEXT: &str = "#4a4f57";
const LINE: &str = "#2a6fdb";
const MENTIONS: &str = "#b9c8e4";
const NEGATIVE: &str = "#d9534f";

/// The picture's size and where the plot sits in it.
struct Frame {
    width: u32,
    height: u32,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn new(width: u32, height: u32) -> Frame {
        let width = width.clamp(MIN_WIDTH, MAX_SIDE);
        let height = height.clamp(MIN_HEIGHT, MAX_SIDE);
        Frame {
            width,
            height,
            left: PAD_LEFT,
            right: f64::from(width) - PAD_RIGHT,
            top: PAD_TOP,
            bottom: f64::from(height) - PAD_BOTTOM,
        }
    }

    /// The x of item `i` of `n`, spread over the plot's width; a lone item sits in the middle.
    fn x_of(&self, i: usize, n: usize) -> f64 {
        if n <= 1 {
            return (self.left + self.right) / 2.0;
        }
        self.left + (self.right - self.left) * i as f64 / (n - 1) as f64
    }

    /// The y of `v` on an axis from `lo` (bottom) to `hi` (top). Halved first, so that the
    /// span of two huge values of opposite sign does not overflow.
    fn y_of(&self, v: f64, lo: f64, hi: f64) -> f64 {
        let ratio = (v / 2.0 - lo / 2.0) / (hi / 2.0 - lo / 2.0);
        let ratio = if ratio.is_finite() {
            ratio.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.bottom - ratio * (self.bottom - self.top)
    }

    fn view_box(&self) -> String {
        format!("0 0 {} {}", self.width, self.height)
    }
}

/// A coordinate as written into the SVG.
fn num(v: f64) -> String {
    format!("{v:.1}")
}

/// The y axis for `values` (finite ones only): it always holds zero, so a flat trend does not
/// look like a cliff, and it is never empty.
fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}

fn short(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// The outer `<svg>`, its accessible name and the two axes.
fn frame_svg(f: &Frame, title: &str, body: Markup) -> Markup {
    html! {
        svg class="chart" viewBox=(f.view_box()) width=(f.width) height=(f.height)
            role="img" aria-label=(title) preserveAspectRatio="xMinYMin meet" {
            title { (title) }
            line x1=(num(f.left)) y1=(num(f.top)) x2=(num(f.left)) y2=(num(f.bottom))
                stroke=(AXIS) stroke-width="1" {}
            line x1=(num(f.left)) y1=(num(f.bottom)) x2=(num(f.right)) y2=(num(f.bottom))
                stroke=(AXIS) stroke-width="1" {}
            (body)
        }
    }
}

/// The top and bottom of the y axis, written by its left side.
fn y_labels(f: &Frame, top: &str, bottom: &str) -> Markup {
    let x = num(f.left - 6.0);
    html! {
        text x=(x) y=(num(f.top + 4.0)) text-anchor="end" font-size="11" fill=(TEXT) { (short(top)) }
        text x=(x) y=(num(f.bottom)) text-anchor="end" font-size="11" fill=(TEXT) { (short(bottom)) }
    }
}

/// The first and last x labels, under the ends of the x axis (one label: in the middle).
fn x_labels(f: &Frame, labels: &[&str]) -> Markup {
    let y = num(f64::from(f.height) - 6.0);
    html! {
        @match labels {
            [] => {}
            [only] => {
                text x=(num(f.x_of(0, 1))) y=(y) text-anchor="middle" font-size="11" fill=(TEXT) { (short(only)) }
            }
            [first, .., last] => {
                text x=(num(f.left)) y=(y) text-anchor="start" font-size="11" fill=(TEXT) { (short(first)) }
                text x=(num(f.right)) y=(y) text-anchor="end" font-size="11" fill=(TEXT) { (short(last)) }
            }
        }
    }
}

/// A dash in the middle of an empty plot.
fn no_data(f: &Frame) -> Markup {
    html! {
        text x=(num((f.left + f.right) / 2.0)) y=(num((f.top + f.bottom) / 2.0))
            text-anchor="middle" font-size="14" fill=(TEXT) { "—" }
    }
}

/// A line chart: one value per x label, `None` (or NaN, or infinite) for no value, which
/// leaves a gap in the line. Each value is also a dot with a tooltip, so a lone value between
/// gaps still shows. The y axis is labelled with its bottom and top through `y_format`; the x
/// axis with the first and last labels.
pub fn line_chart(
    title: &str,
    points: &[(String, Option<f64>)],
    y_format: fn(f64) -> String,
    width: u32,
    height: u32,
) -> Markup {
    let f = Frame::new(width, height);
    let n = points.len();
    let values: Vec<Option<f64>> = points
        .iter()
        .map(|(_, v)| v.filter(|v| v.is_finite()))
        .collect();
    let (lo, hi) = y_range(values.iter().flatten().copied());
    let coords: Vec<Option<(f64, f64)>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| v.map(|v| (f.x_of(i, n), f.y_of(v, lo, hi))))
        .collect();
    let runs: Vec<String> = coords
        .split(Option::is_none)
        .filter(|run| run.len() >= 2)
        .map(|run| {
            run.iter()
                .flatten()
                .map(|&(x, y)| format!("{},{}", num(x), num(y)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let labels: Vec<&str> = points.iter().map(|(label, _)| label.as_str()).collect();
    let body = html! {
        @if values.iter().all(Option::is_none) {
            (no_data(&f))
        } @else {
            (y_labels(&f, &y_format(hi), &y_format(lo)))
        }
        (x_labels(&f, &labels))
        @for run in &runs {
            polyline points=(run) fill="none" stroke=(LINE) stroke-width="2"
                stroke-linejoin="round" stroke-linecap="round" {}
        }
        @for ((label, value), xy) in labels.iter().zip(&values).zip(&coords) {
            @if let (Some(v), Some((x, y))) = (value, xy) {
                circle cx=(num(*x)) cy=(num(*y)) r="3" fill=(LINE) {
                    title { (label) ": " (y_format(*v)) }
                }
            }
        }
    };
    frame_svg(&f, title, body)
}

/// A count as a person reads it: no decimals when it is whole.
fn count_text(v: f64) -> String {
    if !v.is_finite() {
        "—".to_string()
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A bar chart of mentions with the negative ones drawn over them from the same baseline
/// (negatives are a part of mentions, so the red part is the share that was negative). Each
/// bar has a tooltip `label: mentions / negative`. A value that is negative, NaN or infinite
/// draws no bar.
pub fn bar_chart(title: &str, bars: &[(String, f64, f64)], width: u32, height: u32) -> Markup {
    let f = Frame::new(width, height);
    let n = bars.len();
    let usable = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
    let (_, top) = y_range(
        bars.iter()
            .flat_map(|&(_, m, neg)| [usable(m), usable(neg)]),
    );
    let slot = (f.right - f.left) / n.max(1) as f64;
    let bar_width = slot * 0.8;
    let bar = |i: usize, v: f64| {
        let x = f.left + slot * i as f64 + (slot - bar_width) / 2.0;
        let y = f.y_of(usable(v), 0.0, top);
        (num(x), num(y), num(bar_width), num(f.bottom - y))
    };
    let labels: Vec<&str> = bars.iter().map(|(label, _, _)| label.as_str()).collect();
    let body = html! {
        @if n == 0 {
            (no_data(&f))
        } @else {
            (y_labels(&f, &count_text(top), "0"))
        }
        (x_labels(&f, &labels))
        @for (i, (label, mentions, negative)) in bars.iter().enumerate() {
            @let (x, y, w, h) = bar(i, *mentions);
            @let (nx, ny, nw, nh) = bar(i, *negative);
            g {
                title { (label) ": " (count_text(*mentions)) " / " (count_text(*negative)) }
                rect x=(x) y=(y) width=(w) height=(h) fill=(MENTIONS) {}
                rect x=(nx) y=(ny) width=(nw) height=(nh) fill=(NEGATIVE) {}
            }
        }
    };
    frame_svg(&f, title, body)
}

/// The colours of the bar chart, for a legend drawn outside it: (mentions, negative).
pub const BAR_COLOURS: (&str, &str) = (MENTIONS, NEGATIVE);

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(v: f64) -> String {
        format!("{:.1}%", v * 100.0)
    }

    fn pts(values: &[Option<f64>]) -> Vec<(String, Option<f64>)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("d{i}"), *v))
            .collect()
    }

    /// The numbers after ` name="` anywhere in `svg`.
    fn attr_numbers(svg: &str, name: &str) -> Vec<f64> {
        let needle = format!(" {name}=\"");
        svg.match_indices(&needle)
            .map(|(at, _)| {
                let rest = &svg[at + needle.len()..];
                let value = &rest[..rest.find('"').unwrap()];
                value
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("{name}={value:?} is not a number"))
            })
            .collect()
    }

    fn view_box(svg: &str) -> (f64, f64) {
        let rest = &svg[svg.find("viewBox=\"").unwrap() + 9..];
        let parts: Vec<f64> = rest[..rest.find('"').unwrap()]
            .split(' ')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(&parts[..2], &[0.0, 0.0]);
        (parts[2], parts[3])
    }

    /// Every coordinate and size in `svg` is a finite number inside its viewBox.
    fn assert_inside(svg: &str) {
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let (w, h) = view_box(svg);
        let check = |v: f64, max: f64, what: &str| {
            assert!(
                v.is_finite() && (0.0..=max).contains(&v),
                "{what}={v} outside 0..={max}: {svg}"
            );
        };
        for name in ["x", "x1", "x2", "cx", "width"] {
            for v in attr_numbers(svg, name) {
                check(v, w, name);
            }
        }
        for name in ["y", "y1", "y2", "cy", "height"] {
            for v in attr_numbers(svg, name) {
                check(v, h, name);
            }
        }
        for (at, _) in svg.match_indices(" points=\"") {
            let rest = &svg[at + 9..];
            for pair in rest[..rest.find('"').unwrap()].split(' ') {
                let (x, y) = pair.split_once(',').unwrap();
                check(x.parse().unwrap(), w, "points x");
                check(y.parse().unwrap(), h, "points y");
            }
        }
        for (at, _) in svg.match_indices("<rect ") {
            let tag = &svg[at..at + svg[at..].find('>').unwrap()];
            let [x, y, rw, rh] = ["x", "y", "width", "height"].map(|n| attr_numbers(tag, n)[0]);
            check(x + rw, w, "rect right");
            check(y + rh, h, "rect bottom");
        }
    }

    #[test]
    fn a_week_draws_one_line_with_labelled_ends() {
        let svg = line_chart(
            "客诉率",
            &pts(&[
                Some(0.1),
                Some(0.2),
                Some(0.05),
                Some(0.3),
                Some(0.1),
                Some(0.0),
                Some(0.12),
            ]),
            pct,
            480,
            160,
        )
        .into_string();
        assert_inside(&svg);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 7);
        assert!(svg.contains("<title>客诉率</title>"));
        assert!(svg.contains(">d0</text>") && svg.contains(">d6</text>"));
        // The axis runs from zero to the largest value.
        assert!(svg.contains(">30.0%</text>") && svg.contains(">0.0%</text>"));
        // The highest value touches the top of the plot, zero the bottom.
        assert!(svg.contains(&format!("cy=\"{}\"", num(PAD_TOP))));
        assert!(svg.contains(&format!("cy=\"{}\"", num(160.0 - PAD_BOTTOM))));
    }

    #[test]
    fn the_same_data_draws_the_same_bytes() {
        let data = pts(&[Some(1.0), None, Some(3.0)]);
        assert_eq!(
            line_chart("t", &data, pct, 300, 100).into_string(),
            line_chart("t", &data, pct, 300, 100).into_string()
        );
    }

    #[test]
    fn empty_line_chart_draws_axes_and_a_dash() {
        for data in [pts(&[]), pts(&[None, None])] {
            let svg = line_chart("empty", &data, pct, 300, 120).into_string();
            assert_inside(&svg);
            assert!(!svg.contains("<polyline") && !svg.contains("<circle"));
            assert!(svg.contains(">—</text>"));
            assert_eq!(svg.matches("<line").count(), 2);
        }
    }

    #[test]
    fn all_zeros_lie_on_the_bottom() {
        let svg = line_chart("z", &pts(&[Some(0.0); 7]), pct, 300, 120).into_string();
        assert_inside(&svg);
        let bottom = 120.0 - PAD_BOTTOM;
        assert!(attr_numbers(&svg, "cy").iter().all(|&y| y == bottom));
        assert!(svg.contains(">100.0%</text>"), "an axis that is not empty");
    }

    #[test]
    fn a_single_point_is_a_dot_in_the_middle() {
        let svg = line_chart("one", &pts(&[Some(2.5)]), pct, 300, 120).into_string();
        assert_inside(&svg);
        assert!(!svg.contains("<polyline"));
        assert_eq!(
            attr_numbers(&svg, "cx"),
            vec![(PAD_LEFT + 300.0 - PAD_RIGHT) / 2.0]
        );
        assert!(svg.contains("text-anchor=\"middle\""));
    }

    #[test]
    fn missing_and_non_finite_values_are_gaps() {
        let data = pts(&[
            Some(1.0),
            Some(2.0),
            None,
            Some(f64::NAN),
            Some(3.0),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(4.0),
            Some(5.0),
        ]);
        let svg = line_chart("gaps", &data, pct, 400, 150).into_string();
        assert_inside(&svg);
        // [1, 2] and [4, 5] are lines; 3 alone is only a dot.
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 5);
        // The axis is from the finite values only.
        assert!(svg.contains(">500.0%</text>"));
    }

    #[test]
    fn extreme_values_and_sizes_stay_inside() {
        let data = pts(&[Some(f64::MAX), Some(-f64::MAX), Some(1e-300), Some(0.0)]);
        // (`pct` itself would overflow to "inf%" here: the formatter is the caller's.)
        let sci = |v: f64| format!("{v:e}");
        for (w, h) in [(0, 0), (1, 1), (300, 120), (u32::MAX, u32::MAX)] {
            assert_inside(&line_chart("x", &data, sci, w, h).into_string());
            let bars = [
                ("a".to_string(), f64::MAX, f64::MAX),
                ("b".to_string(), 1.0, 0.0),
            ];
            assert_inside(&bar_chart("x", &bars, w, h).into_string());
        }
    }

    #[test]
    fn text_is_escaped() {
        let data = vec![
            ("<b>\"x\"</b>".to_string(), Some(1.0)),
            ("&amp".to_string(), Some(2.0)),
        ];
        let svg = line_chart("<script>alert(1)</script>", &data, pct, 300, 120).into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("&lt;b&gt;&quot;x&quot;&lt;/b&gt;"));
        assert!(svg.contains("&amp;amp"));
        let bars = [("<i>".to_string(), 1.0, 0.0)];
        let svg = bar_chart("\"'><svg onload=x>", &bars, 300, 120).into_string();
        assert!(!svg.contains("<i>") && !svg.contains("\"'><svg"));
    }

    #[test]
    fn long_labels_are_cut() {
        let long = "长".repeat(100);
        let data = vec![(long.clone(), Some(1.0)), (long.clone(), Some(2.0))];
        let svg = line_chart("t", &data, pct, 300, 120).into_string();
        assert!(!svg.contains(&format!(">{long}</text>")));
        assert!(svg.contains(&format!(">{}…</text>", "长".repeat(MAX_LABEL_CHARS - 1))));
    }

    #[test]
    fn a_day_of_hourly_bars() {
        let bars: Vec<(String, f64, f64)> = (0..24)
            .map(|h| (format!("{h:02}:00"), f64::from(h * 2), f64::from(h / 3)))
            .collect();
        let svg = bar_chart("24h", &bars, 480, 160).into_string();
        assert_inside(&svg);
        assert_eq!(svg.matches("<rect").count(), 48);
        assert!(svg.contains(">00:00</text>") && svg.contains(">23:00</text>"));
        assert!(svg.contains(">46</text>") && svg.contains(">0</text>"));
        assert!(svg.contains("<title>23:00: 46 / 7</title>"));
        // The busiest hour reaches the top of the plot.
        assert!(svg.contains(&format!("y=\"{}\"", num(PAD_TOP))));
    }

    #[test]
    fn empty_zero_and_broken_bars_draw_nothing_wrong() {
        let svg = bar_chart("none", &[], 300, 120).into_string();
        assert_inside(&svg);
        assert!(!svg.contains("<rect") && svg.contains(">—</text>"));

        let zeros: Vec<_> = (0..24).map(|h| (format!("{h}"), 0.0, 0.0)).collect();
        let svg = bar_chart("zeros", &zeros, 300, 120).into_string();
        assert_inside(&svg);
        assert!(attr_numbers(&svg, "height")
            .iter()
            .skip(1) // the <svg>'s own
            .all(|&h| h == 0.0));

        let broken = [
            ("nan".to_string(), f64::NAN, f64::NAN),
            ("unbounded".to_string(), f64::INFINITY, 1.0),
            ("neg".to_string(), -5.0, -1.0),
            ("more negative than mentions".to_string(), 1.0, 3.0),
        ];
        let svg = bar_chart("broken", &broken, 300, 120).into_string();
        assert_inside(&svg);
        assert!(svg.contains("<title>nan: — / —</title>"));
        assert!(
            svg.contains(">3</text>"),
            "the axis fits the largest finite value"
        );
    }

    #[test]
    fn one_bar_fills_its_slot() {
        let svg = bar_chart("one", &[("only".into(), 4.0, 1.0)], 300, 120).into_string();
        assert_inside(&svg);
        assert!(svg.contains("text-anchor=\"middle\""));
        let widths = attr_numbers(&svg, "width");
        let plot = 300.0 - PAD_LEFT - PAD_RIGHT;
        assert_eq!(widths[1], (plot * 0.8 * 10.0).round() / 10.0);
    }
}
