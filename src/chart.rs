//! The negative-volume chart for chat messages: a PNG of a brand's last 24 hours of negative
//! posts in 15-minute bins, against the band of what the week before makes usual, with an
//! incident's window shaded. The notifier sends it with alerts (Telegram `sendPhoto`) and
//! digests; brand names and Chinese text go in the message's caption, never in the image.
//!
//! [`negative_volume`] counts (pure reads of the store's negative index);
//! [`render_png`] draws the shapes with plotters' bitmap backend into an RGB buffer, then the
//! text with `ab_glyph` from a subset of DejaVu Sans (printable ASCII) built into the binary,
//! so the chart renders the same on a server with no fonts; `png` encodes the buffer.
//! DejaVu's licence (Bitstream Vera terms; DejaVu's changes are public domain) allows
//! embedding and subsetting under a name without "Bitstream" or "Vera"; it is in
//! `assets/fonts/LICENSE-DejaVu.txt`.
//!
//! # The baseline band
//!
//! For each bin, the counts of the same quarter-hour and its two neighbours on each of the
//! previous 7 days (21 values) give a mean and a spread; the band is mean ± 2 × the spread,
//! where the spread is the standard deviation, but at least √mean (Poisson), so a week of
//! identical counts still has a band. It is a picture of "usual for this time of day", not the
//! spike test's own expectation, which lives in the daemon's memory.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use chrono_tz::Tz;
use plotters::prelude::*;

use crate::store::Store;

/// The picture's size in pixels.
pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 360;
/// Bin length and how many bins make the 24 hours.
pub const BIN_MINUTES: i64 = 15;
pub const BINS: usize = 96;
/// How many earlier days make the baseline band.
pub const BASELINE_DAYS: usize = 7;

/// DejaVu Sans cut down to printable ASCII (10 KB); see the module docs for its licence.
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Latin.ttf");

const VOLUME: RGBColor = RGBColor(201, 48, 44);
const BAND: RGBColor = RGBColor(31, 95, 191);
const SHADE: RGBColor = RGBColor(255, 224, 178);
const AXIS_TEXT: RGBColor = RGBColor(40, 40, 40);

/// What usual looks like for one bin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// 24 hours of negative counts and their baseline band.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeSeries {
    /// The start of the first bin; bins are aligned to quarter-hours.
    pub start: DateTime<Utc>,
    /// [`BINS`] counts, oldest first; the last bin ends at `until` and may be partial.
    pub counts: Vec<u64>,
    /// One band per bin.
    pub baseline: Vec<Band>,
    /// Axis labels are local times in this zone.
    pub time_zone: Tz,
}

fn bin() -> ChronoDuration {
    ChronoDuration::minutes(BIN_MINUTES)
}

/// `brand`'s negative posts in the [`BINS`] quarter-hours up to `until` (the last one holding
/// `until`), with the baseline band of each.
pub fn negative_volume(store: &Store, brand: &str, until: DateTime<Utc>) -> VolumeSeries {
    let bin_secs = BIN_MINUTES * 60;
    let last_start = DateTime::<Utc>::from_timestamp(
        until.timestamp() - until.timestamp().rem_euclid(bin_secs),
        0,
    )
    .unwrap_or(until);
    let start = last_start - bin() * (BINS as i32 - 1);
    // One run of counts from the week before (and one bin more, for the first bin's earlier
    // neighbour) up to `until`.
    let history_bins = BASELINE_DAYS * BINS + 1;
    let first = start - bin() * history_bins as i32;
    let counts_all: Vec<u64> = (0..history_bins + BINS)
        .map(|j| {
            let from = first + bin() * j as i32;
            // Nothing after `until` counts, so a chart drawn later shows what was known then.
            let to = (from + bin()).min(until + ChronoDuration::milliseconds(1));
            store.count_negative(brand, from, to)
        })
        .collect();
    let baseline = (0..BINS)
        .map(|i| {
            let here = history_bins + i;
            let samples: Vec<f64> = (1..=BASELINE_DAYS)
                .flat_map(|d| [-1_isize, 0, 1].map(|k| here as isize - (d * BINS) as isize + k))
                .map(|idx| counts_all[idx as usize] as f64)
                .collect();
            band(&samples)
        })
        .collect();
    VolumeSeries {
        start,
        counts: counts_all[history_bins..].to_vec(),
        baseline,
        time_zone: store.time_zone(),
    }
}

fn band(samples: &[f64]) -> Band {
    let n = samples.len().max(1) as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let variance = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let spread = variance.sqrt().max(mean.sqrt());
    Band {
        mean,
        low: (mean - 2.0 * spread).max(0.0),
        high: mean + 2.0 * spread,
    }
}

/// The chart of `brand`'s negative volume up to `until`, with `incident_window` (from, to)
/// shaded, as PNG bytes of [`WIDTH`] × [`HEIGHT`].
pub fn negative_volume_png(
    store: &Store,
    brand: &str,
    until: DateTime<Utc>,
    incident_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<Vec<u8>> {
    let series = negative_volume(store, brand, until);
    render_png(&series, incident_window).with_context(|| format!("drawing {brand}'s volume chart"))
}

/// The embedded font, parsed.
fn font() -> Result<FontRef<'static>> {
    FontRef::try_from_slice(FONT).map_err(|_| anyhow!("the embedded chart font does not parse"))
}

/// Draws `series` as a PNG; `incident_window` is shaded where it overlaps the 24 hours.
pub fn render_png(
    series: &VolumeSeries,
    incident_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<Vec<u8>> {
    let font = font()?;
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    let labels = draw_shapes(series, incident_window, &font, &mut rgb)
        .map_err(|e| anyhow!("plotting failed: {e}"))?;
    for label in &labels {
        draw_text(&mut rgb, &font, label);
    }
    encode_png(&rgb)
}

/// The x axis' origin: the whole (UTC) hour the chart starts in, so that whole numbers on the
/// axis fall on whole hours.
fn origin(series: &VolumeSeries) -> DateTime<Utc> {
    let t = series.start.timestamp();
    DateTime::<Utc>::from_timestamp(t - t.rem_euclid(3600), 0).unwrap_or(series.start)
}

/// Hours since the axis' origin, the x axis' unit.
fn hours_since(series: &VolumeSeries, at: DateTime<Utc>) -> f64 {
    (at - origin(series)).num_seconds() as f64 / 3600.0
}

/// Room around the plot for the labels, in pixels.
const MARGIN_LEFT: u32 = 52;
const MARGIN_RIGHT: u32 = 16;
const MARGIN_TOP: u32 = 34;
const MARGIN_BOTTOM: u32 = 48;
const LABEL_PX: f32 = 13.0;
const GRID: RGBColor = RGBColor(225, 228, 232);
const AXIS: RGBColor = RGBColor(120, 126, 134);

/// Where a text's anchor point sits on it horizontally.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Align {
    Left,
    Centre,
    Right,
}

/// A text to draw at a pixel, vertically centred on it.
#[derive(Debug, Clone, PartialEq)]
struct Label {
    text: String,
    x: i32,
    y: i32,
    align: Align,
}

impl Label {
    fn new(text: impl Into<String>, (x, y): (i32, i32), align: Align) -> Label {
        Label {
            text: text.into(),
            x,
            y,
            align,
        }
    }
}

/// A tick step of 1, 2 or 5 × 10^k giving at most 6 ticks up to `top`.
fn tick_step(top: f64) -> f64 {
    let rough = (top / 5.0).max(1.0);
    let magnitude = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| top / step <= 6.0)
        .unwrap_or(10.0 * magnitude)
}

/// Draws everything but text with plotters, and says which texts go where. Text is drawn
/// afterwards by [`draw_text`]: plotters' own glyph placement drops each glyph's side bearing,
/// which spaces digits unevenly.
fn draw_shapes(
    series: &VolumeSeries,
    incident_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    font: &FontRef<'static>,
    rgb: &mut [u8],
) -> Result<Vec<Label>, Box<dyn std::error::Error>> {
    let first = hours_since(series, series.start);
    let span = first + (BINS as i64 * BIN_MINUTES) as f64 / 60.0;
    let bin_hours = BIN_MINUTES as f64 / 60.0;
    let top = series
        .counts
        .iter()
        .map(|c| *c as f64)
        .chain(series.baseline.iter().map(|b| b.high))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let step = tick_step(top);
    let y_max = (top / step).ceil() * step;

    let root = BitMapBackend::with_buffer(rgb, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let plot = root.margin(MARGIN_TOP, MARGIN_BOTTOM, MARGIN_LEFT, MARGIN_RIGHT);
    let mut chart = ChartBuilder::on(&plot).build_cartesian_2d(first..span, 0.0..y_max)?;
    let mut labels = Vec::new();

    let mut shaded = false;
    if let Some((from, to)) = incident_window {
        let (x0, x1) = (
            hours_since(series, from).clamp(first, span),
            hours_since(series, to).clamp(first, span),
        );
        if x1 > x0 {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, 0.0), (x1, y_max)],
                SHADE.filled(),
            )))?;
            shaded = true;
        }
    }

    let ticks: Vec<f64> = (0..)
        .map(|k| k as f64 * step)
        .take_while(|y| *y <= y_max + 1e-9)
        .collect();
    for y in &ticks {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(first, *y), (span, *y)],
            GRID.stroke_width(1),
        )))?;
        let (px, py) = chart.backend_coord(&(first, *y));
        labels.push(Label::new(format!("{y:.0}"), (px - 6, py), Align::Right));
    }

    let centre = |i: usize| first + (i as f64 + 0.5) * bin_hours;
    let mut outline: Vec<(f64, f64)> = (0..series.baseline.len())
        .map(|i| (centre(i), series.baseline[i].high))
        .collect();
    outline.extend(
        (0..series.baseline.len())
            .rev()
            .map(|i| (centre(i), series.baseline[i].low)),
    );
    chart.draw_series(std::iter::once(Polygon::new(outline, BAND.mix(0.18))))?;
    let means: Vec<(f64, f64)> = (0..series.baseline.len())
        .map(|i| (centre(i), series.baseline[i].mean))
        .collect();
    chart.draw_series(std::iter::once(PathElement::new(
        means,
        BAND.mix(0.7).stroke_width(1),
    )))?;

    chart.draw_series(
        series
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| {
                let x0 = first + i as f64 * bin_hours;
                Rectangle::new(
                    [
                        (x0 + bin_hours * 0.1, 0.0),
                        (x0 + bin_hours * 0.9, *c as f64),
                    ],
                    VOLUME.filled(),
                )
            }),
    )?;

    // Axes, and a tick with its local time every 3 hours.
    chart.draw_series([
        PathElement::new(vec![(first, 0.0), (span, 0.0)], AXIS.stroke_width(1)),
        PathElement::new(vec![(first, 0.0), (first, y_max)], AXIS.stroke_width(1)),
    ])?;
    let tz = series.time_zone;
    let start = origin(series);
    for hour in (first.ceil() as i64)..=(span.floor() as i64) {
        let when = start + ChronoDuration::hours(hour);
        let local = when.with_timezone(&tz);
        if local.format("%H").to_string().parse::<u32>().unwrap_or(1) % 3 != 0 {
            continue;
        }
        let x = hour as f64;
        let (px, py) = chart.backend_coord(&(x, 0.0));
        chart.plotting_area().draw(&PathElement::new(
            vec![(x, 0.0), (x, y_max * 0.015)],
            AXIS.stroke_width(1),
        ))?;
        labels.push(Label::new(
            local.format("%H:%M").to_string(),
            (px, py + 12),
            Align::Centre,
        ));
    }

    // The axis description below, the unit above, the legend top right.
    let (left, bottom) = chart.backend_coord(&(first, 0.0));
    let (right, top_px) = chart.backend_coord(&(span, y_max));
    labels.push(Label::new(
        format!("local time ({})", tz.name()),
        ((left + right) / 2, bottom + 32),
        Align::Centre,
    ));
    labels.push(Label::new(
        format!("negative posts per {BIN_MINUTES} min"),
        (left - 40, top_px - 18),
        Align::Left,
    ));
    let mut legend: Vec<(&str, RGBAColor)> = vec![
        ("negative posts", VOLUME.to_rgba()),
        ("usual range (7 days)", BAND.mix(0.18)),
    ];
    if shaded {
        legend.push(("incident", SHADE.to_rgba()));
    }
    let mut x = right;
    for (text, colour) in legend.iter().rev() {
        // Laid out from the right: text, then its swatch before it.
        let width = text_width(font, text).ceil() as i32;
        labels.push(Label::new(*text, (x, top_px - 18), Align::Right));
        let swatch_right = x - width - 6;
        root.draw(&Rectangle::new(
            [
                (swatch_right - 12, top_px - 23),
                (swatch_right, top_px - 13),
            ],
            colour.filled(),
        ))?;
        x = swatch_right - 22;
    }
    root.present()?;
    Ok(labels)
}

/// How wide `text` is drawn, in pixels: the advances and kerning of its glyphs.
fn text_width(font: &FontRef<'static>, text: &str) -> f32 {
    let scaled = font.as_scaled(PxScale::from(LABEL_PX));
    let ids: Vec<_> = text.chars().map(|c| scaled.glyph_id(c)).collect();
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            scaled.h_advance(*id)
                + if i > 0 {
                    scaled.kern(ids[i - 1], *id)
                } else {
                    0.0
                }
        })
        .sum()
}

/// Blends `label` into the RGB buffer with the embedded font: each glyph at its advance, with
/// kerning, anti-aliased by its coverage.
fn draw_text(rgb: &mut [u8], font: &FontRef<'static>, label: &Label) {
    let scale = PxScale::from(LABEL_PX);
    let scaled = font.as_scaled(scale);
    let ids: Vec<_> = label.text.chars().map(|c| scaled.glyph_id(c)).collect();
    let width = text_width(font, &label.text);
    let mut caret = match label.align {
        Align::Left => label.x as f32,
        Align::Centre => label.x as f32 - width / 2.0,
        Align::Right => label.x as f32 - width,
    };
    // Centre the digits' and capitals' height on the anchor.
    let baseline = label.y as f32 + (scaled.ascent() + scaled.descent()) / 2.0;
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            caret += scaled.kern(ids[i - 1], *id);
        }
        let glyph = id.with_scale_and_position(scale, point(caret, baseline));
        caret += scaled.h_advance(*id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let x = bounds.min.x as i64 + i64::from(gx);
            let y = bounds.min.y as i64 + i64::from(gy);
            if x < 0 || y < 0 || x >= i64::from(WIDTH) || y >= i64::from(HEIGHT) {
                return;
            }
            let at = ((y * i64::from(WIDTH) + x) * 3) as usize;
            let ink = [AXIS_TEXT.0, AXIS_TEXT.1, AXIS_TEXT.2];
            for (channel, ink) in rgb[at..at + 3].iter_mut().zip(ink) {
                let c = coverage.clamp(0.0, 1.0);
                *channel = (f32::from(*channel) * (1.0 - c) + f32::from(ink) * c).round() as u8;
            }
        });
    }
}

fn encode_png(rgb: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().context("writing the PNG header")?;
        writer
            .write_image_data(rgb)
            .context("writing the PNG image")?;
        writer.finish().context("finishing the PNG")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Hit;
    use chrono::TimeZone;

    fn negative(at: DateTime<Utc>) -> Hit {
        Hit {
            amplification: 0,
            reposted_by: Vec::new(),
            brand: "b".into(),
            source: "s".into(),
            url: None,
            title: "t".into(),
            snippet: String::new(),
            at,
            fetched_at: at,
            score: -2.0,
            negative: true,
            terms: vec![],
            severity: 1.0,
            crisis: vec![],
        }
    }

    fn until() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 12, 7, 0).unwrap()
    }

    /// Decodes a PNG into (width, height, RGB pixels).
    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut buf).expect("an image");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn pixels(rgb: &[u8], colour: RGBColor) -> usize {
        rgb.chunks(3)
            .filter(|p| *p == [colour.0, colour.1, colour.2])
            .count()
    }

    fn has_pixel(rgb: &[u8], colour: RGBColor) -> bool {
        pixels(rgb, colour) > 0
    }

    /// The legend's swatch is 15 × 11 pixels; bars make far more.
    const SWATCH: usize = 15 * 11;

    #[test]
    fn counts_fall_in_their_quarter_hours_and_stop_at_until() {
        let store = Store::temporary().unwrap();
        for at in [
            until(),                                                           // the last, partial bin
            until() - ChronoDuration::minutes(8), // 11:59: the bin before
            until() - ChronoDuration::hours(24) + ChronoDuration::minutes(10), // the first bin
            until() + ChronoDuration::minutes(1), // after until: not counted
            until() - ChronoDuration::hours(30),  // too old for the chart
        ] {
            store.insert_hit(&negative(at)).unwrap();
        }
        let s = negative_volume(&store, "b", until());
        assert_eq!(s.counts.len(), BINS);
        assert_eq!(
            s.start,
            Utc.with_ymd_and_hms(2026, 3, 9, 12, 15, 0).unwrap()
        );
        assert_eq!(s.counts[BINS - 1], 1);
        assert_eq!(s.counts[BINS - 2], 1);
        assert_eq!(s.counts[0], 1, "12:17 the day before");
        assert_eq!(s.counts.iter().sum::<u64>(), 3);
        assert_eq!(s.time_zone, chrono_tz::Asia::Shanghai);
    }

    #[test]
    fn the_band_comes_from_the_same_time_on_earlier_days() {
        let store = Store::temporary().unwrap();
        let s0 = negative_volume(&store, "b", until());
        // Two negative posts in bin 40 and both its neighbours on each of the 7 days before.
        for d in 1..=7 {
            for k in 39..=41 {
                let at =
                    s0.start - ChronoDuration::days(d) + bin() * k + ChronoDuration::minutes(1);
                store.insert_hit(&negative(at)).unwrap();
                store.insert_hit(&negative(at)).unwrap();
            }
        }
        let s = negative_volume(&store, "b", until());
        assert_eq!(s.counts.iter().sum::<u64>(), 0, "nothing today");
        let b = s.baseline[40];
        assert!((b.mean - 2.0).abs() < 1e-9, "{b:?}");
        // Identical counts have no spread; √2 stands in for it.
        assert!((b.high - (2.0 + 2.0 * 2f64.sqrt())).abs() < 1e-9, "{b:?}");
        assert_eq!(b.low, 0.0);
        // A neighbour sees two of its three slots busy: mean 4/3.
        assert!((s.baseline[41].mean - 4.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            s.baseline[10],
            Band {
                mean: 0.0,
                low: 0.0,
                high: 0.0
            }
        );
    }

    #[test]
    fn the_png_decodes_at_its_size_with_the_window_shaded_and_labels_drawn() {
        let store = Store::temporary().unwrap();
        for m in 0..30 {
            store
                .insert_hit(&negative(until() - ChronoDuration::minutes(3 * m)))
                .unwrap();
        }
        let window = (until() - ChronoDuration::hours(2), until());
        let png = negative_volume_png(&store, "b", until(), Some(window)).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let (w, h, rgb) = decode(&png);
        assert_eq!((w, h), (WIDTH, HEIGHT));
        assert!(has_pixel(&rgb, SHADE), "the incident window is shaded");
        assert!(
            pixels(&rgb, VOLUME) > 10 * SWATCH,
            "the volume bars are drawn"
        );
        // The axis description sits in the bottom rows: dark pixels there are text, drawn with
        // the embedded font (plotters has no other).
        let row = (WIDTH * 3) as usize;
        let bottom = &rgb[(HEIGHT as usize - 16) * row..(HEIGHT as usize - 2) * row];
        let dark = bottom
            .chunks(3)
            .filter(|p| p.iter().all(|c| *c < 120))
            .count();
        assert!(dark > 50, "axis text is drawn ({dark} dark pixels)");

        let plain = negative_volume_png(&store, "b", until(), None).unwrap();
        let (_, _, rgb) = decode(&plain);
        assert!(!has_pixel(&rgb, SHADE), "no window, no shade");
    }

    #[test]
    fn an_empty_brand_and_a_window_outside_the_day_still_draw() {
        let store = Store::temporary().unwrap();
        let long_ago = (
            until() - ChronoDuration::days(5),
            until() - ChronoDuration::days(4),
        );
        let png = negative_volume_png(&store, "nobody", until(), Some(long_ago)).unwrap();
        let (w, h, rgb) = decode(&png);
        assert_eq!((w, h), (WIDTH, HEIGHT));
        assert!(
            !has_pixel(&rgb, SHADE),
            "a window outside the 24 hours is not drawn"
        );
        assert!(
            pixels(&rgb, VOLUME) <= SWATCH,
            "no posts, no bars (the legend only)"
        );
    }
}
