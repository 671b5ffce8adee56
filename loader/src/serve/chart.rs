//! An inline SVG line chart drawn on the server, so the trend shows without scripts.

use super::html::esc;

/// `points`: (label, value) in time order. Returns an `<svg>` with one polyline, the
/// first and last labels on the x axis and the maximum on the y axis.
pub fn line_chart(title: &str, points: &[(String, f64)]) -> String {
    let (w, h, pad) = (640.0_f64, 200.0_f64, 36.0_f64);
    if points.is_empty() {
        return format!("<svg class=\"chart\" role=\"img\" width=\"{w}\" height=\"40\"><title>{}</title><text x=\"8\" y=\"24\">No events yet.</text></svg>", esc(title));
    }
    let max = points.iter().map(|p| p.1).fold(1.0_f64, f64::max);
    let n = points.len().max(2) - 1;
    let coords: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            let x = pad + (w - 2.0 * pad) * (i as f64) / (n as f64);
            let y = h - pad - (h - 2.0 * pad) * v / max;
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let first = &points[0].0;
    let last = &points[points.len() - 1].0;
    let current = points[points.len() - 1].1;
    format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"{t}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         xmlns=\"http://www.w3.org/2000/svg\" style=\"background:#fff;border:1px solid #d0d7de\">\
         <title>{t}</title>\
         <line x1=\"{pad}\" y1=\"{yb}\" x2=\"{xr}\" y2=\"{yb}\" stroke=\"#8c959f\"/>\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{yb}\" stroke=\"#8c959f\"/>\
         <text x=\"4\" y=\"{ty}\" font-size=\"11\">{max}</text><text x=\"4\" y=\"{yb}\" font-size=\"11\">0</text>\
         <text x=\"{pad}\" y=\"{lx}\" font-size=\"11\">{f}</text>\
         <text x=\"{xr}\" y=\"{lx}\" font-size=\"11\" text-anchor=\"end\">{l}</text>\
         <polyline class=\"series\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\" points=\"{pts}\"/>\
         <text x=\"{xr}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"end\">now: {current}</text></svg>",
        t = esc(title),
        yb = h - pad,
        xr = w - pad,
        ty = pad - 6.0,
        lx = h - pad + 16.0,
        f = esc(first),
        l = esc(last),
        pts = coords.join(" "),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_one_point_per_value() {
        let svg = super::line_chart("open", &[("a".into(), 1.0), ("b".into(), 3.0), ("c".into(), 2.0)]);
        let pts = svg.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(pts.split(' ').count(), 3);
        assert!(svg.contains("now: 2"));
    }
}
