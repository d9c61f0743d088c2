//! The status page: one HTML document, styles inline, chart drawn as SVG
//! on the server, no script and nothing fetched from elsewhere, so it
//! works in a control room without internet and reloads by itself.
//!
//! Each figure also sits in a `data-` attribute, so a test (or a script
//! on the data centre's side) can read what the page shows.

use std::fmt::Write;

use crate::report::{HealthReport, SourceHealth};
use crate::status::Status;

/// Seconds between reloads of the page.
pub const REFRESH_SECONDS: u32 = 10;

/// Renders the page for `report`.
pub fn render(report: &HealthReport) -> String {
    let mut page = String::with_capacity(16 * 1024);
    let worst = report
        .sources
        .iter()
        .map(|s| s.status)
        .max()
        .unwrap_or(Status::Ok);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} Blockhub sync health</title><style>{STYLE}</style></head>\
         <body data-generated-at=\"{}\"><header><h1>Blockhub sync health</h1>\
         <p class=\"meta\">As of <time>{}</time> (UTC{}) &middot; reloads every {REFRESH_SECONDS} s\
         </p></header>",
        worst.label(),
        report.generated_at.to_rfc3339(),
        report.local(report.generated_at),
        escape(&report.timezone),
    );

    page.push_str(
        "<section><h2>Feeds</h2><table id=\"sources\"><thead><tr><th>Feed</th><th>Status</th>\
         <th>Last delivery</th><th>Why, and what to do</th><th class=\"n\">Events 24 h</th>\
         <th class=\"n\">Rejected 24 h</th><th class=\"n\">Waiting</th></tr></thead><tbody>",
    );
    for source in &report.sources {
        source_row(&mut page, report, source);
    }
    page.push_str("</tbody></table></section>");

    chart(&mut page, report);

    page.push_str("<div class=\"two\"><section><h2>Open alerts</h2>");
    if report.open_alerts.is_empty() {
        page.push_str("<p class=\"quiet\">None open.</p>");
    } else {
        page.push_str("<table id=\"alerts\"><tbody>");
        for (kind, count) in &report.open_alerts {
            let _ = write!(
                page,
                "<tr data-alert-kind=\"{0}\" data-open=\"{count}\"><td>{0}</td>\
                 <td class=\"n\">{count}</td></tr>",
                escape(kind)
            );
        }
        page.push_str("</tbody></table>");
    }
    page.push_str("</section><section><h2>Recent dead letters</h2>");
    if report.recent_dead_letters.is_empty() {
        page.push_str("<p class=\"quiet\">None.</p>");
    } else {
        page.push_str("<table id=\"dead-letters\"><tbody>");
        for letter in &report.recent_dead_letters {
            let _ = write!(
                page,
                "<tr data-dead-letter=\"{}\"><td class=\"when\">{}</td><td>{}</td>\
                 <td>{} <span class=\"quiet\">{}</span></td><td><b>{}</b></td></tr>",
                escape(&letter.reason_code),
                report.local(letter.observed_at),
                escape(&letter.source),
                escape(&letter.location),
                escape(&letter.position),
                escape(&letter.reason_code),
            );
        }
        page.push_str(
            "</tbody></table><p class=\"quiet\">Why each was rejected: \
             <code>blockhub dead-letters</code> on the hub.</p>",
        );
    }
    page.push_str("</section></div></body></html>\n");
    page
}

fn source_row(page: &mut String, report: &HealthReport, source: &SourceHealth) {
    let status = source.status.label();
    let last = source
        .last_delivery_at
        .map_or_else(|| "never".to_string(), |at| report.local(at));
    let _ = write!(
        page,
        "<tr class=\"{}\" data-source=\"{}\" data-status=\"{status}\" \
         data-events-total=\"{}\" data-rejected-total=\"{}\" data-events-24h=\"{}\" \
         data-rejected-24h=\"{}\" data-waiting=\"{}\" data-last-delivery=\"{}\">\
         <td><b>{}</b><br><span class=\"quiet\">{} &middot; {}</span></td>\
         <td><span class=\"badge\">{status}</span></td><td class=\"when\">{last}</td><td>",
        status.to_lowercase(),
        escape(&source.source),
        source.events_total,
        source.rejected_total,
        source.events_24h,
        source.rejected_24h,
        source.waiting,
        source
            .last_delivery_at
            .map(|at| at.to_rfc3339())
            .unwrap_or_default(),
        escape(&source.source),
        escape(&source.contact),
        escape(&source.cadence),
    );
    for reason in &source.reasons {
        let _ = write!(page, "<div class=\"reason\">{}</div>", escape(reason));
    }
    if !source.action.is_empty() {
        let _ = write!(
            page,
            "<div class=\"action\">{}</div>",
            escape(&source.action)
        );
    }
    let _ = write!(
        page,
        "</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        source.events_24h, source.rejected_24h, source.waiting
    );
}

/// Events (and rejections, in red) per hour as bars.
fn chart(page: &mut String, report: &HealthReport) {
    let (width, height, pad) = (960.0_f64, 220.0_f64, 28.0_f64);
    let peak = report
        .hours
        .iter()
        .map(|h| h.events + h.rejected)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (width - pad) / report.hours.len().max(1) as f64;
    let _ = write!(
        page,
        "<section><h2>Events per hour, last {} hours</h2>\
         <svg id=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-label=\"Events per hour\" data-peak=\"{peak}\">\
         <text x=\"0\" y=\"14\" class=\"axis\">{peak}</text>\
         <line x1=\"{pad}\" y1=\"{base_y}\" x2=\"{width}\" y2=\"{base_y}\" class=\"base\"/>",
        report.hours.len(),
        base_y = height - pad,
    );
    let usable = height - pad - 20.0;
    for (index, hour) in report.hours.iter().enumerate() {
        let x = pad + index as f64 * slot;
        let events_h = hour.events as f64 / peak * usable;
        let rejected_h = hour.rejected as f64 / peak * usable;
        let base = height - pad;
        let _ = write!(
            page,
            "<g data-hour=\"{}\" data-events=\"{}\" data-rejected=\"{}\">\
             <title>{}: {} events, {} rejected</title>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{events_h:.1}\" class=\"ev\"/>\
             <rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{rejected_h:.1}\" \
             class=\"rj\"/></g>",
            hour.hour_start.to_rfc3339(),
            hour.events,
            hour.rejected,
            report.local(hour.hour_start),
            hour.events,
            hour.rejected,
            base - events_h,
            (slot - 2.0).max(1.0),
            base - events_h - rejected_h,
            (slot - 2.0).max(1.0),
        );
        if index % 6 == 0 {
            let label = report.local(hour.hour_start);
            let _ = write!(
                page,
                "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>",
                height - 8.0,
                escape(label.get(5..).unwrap_or(&label)),
            );
        }
    }
    page.push_str(
        "</svg><p class=\"quiet\">Blue: events applied. Red: rows and events rejected.</p>\
         </section>",
    );
}

/// Text safe inside HTML elements and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Large type and strong contrast for a projector; status by colour and
/// by word, so it reads without colour too.
const STYLE: &str = "\
body{margin:0;padding:1.5rem 2rem;background:#0f1720;color:#e8eef4;\
font:20px/1.35 system-ui,'Noto Sans CJK SC','Microsoft YaHei',sans-serif}\
h1{font-size:2rem;margin:0}h2{font-size:1.3rem;margin:1.5rem 0 .5rem;color:#9fb3c8}\
.meta,.quiet{color:#9fb3c8}table{width:100%;border-collapse:collapse}\
th{text-align:left;color:#9fb3c8;font-weight:600;border-bottom:2px solid #334455;padding:.4rem}\
td{padding:.5rem .4rem;border-bottom:1px solid #263545;vertical-align:top}\
.n{text-align:right;font-variant-numeric:tabular-nums}.when{white-space:nowrap}\
.badge{display:inline-block;min-width:6.5rem;text-align:center;font-weight:700;\
padding:.2rem .5rem;border-radius:.3rem;background:#2e7d32;color:#fff}\
tr.late .badge{background:#f9a825;color:#111}tr.stalled .badge{background:#ef6c00}\
tr.failing .badge{background:#c62828}tr.failing,tr.stalled{background:#2a1a1a}\
.reason{margin-bottom:.2rem}.action{color:#ffd54f}\
svg{width:100%;height:auto;background:#132030;border-radius:.3rem}\
.ev{fill:#42a5f5}.rj{fill:#ef5350}.base{stroke:#556677}.axis{fill:#9fb3c8;font-size:13px}\
.two{display:grid;grid-template-columns:1fr 2fr;gap:2rem}\
@media (max-width:900px){.two{grid-template-columns:1fr}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
