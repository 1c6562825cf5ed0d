//! The HTML page: the entries, newest first, and the form to add one.

use std::fmt::Write as _;

use crate::entry::{Entry, MAX_MESSAGE, MAX_NAME};

/// `text` with the characters HTML gives meaning to replaced by entities.
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

/// The whole page; `notice` is shown above the form (an error, or why the list is unavailable).
pub fn render(entries: &[Entry], notice: Option<&str>, served_by: &str) -> String {
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Guestbook</title>\
         <style>body{font-family:sans-serif;max-width:40em;margin:2em auto}li{margin:.5em 0}\
         .who{font-weight:bold}.when{color:#777;font-size:.8em}.notice{color:#a00}</style></head><body>\n<h1>Guestbook</h1>\n",
    );
    if let Some(n) = notice {
        let _ = writeln!(html, "<p class=\"notice\">{}</p>", escape(n));
    }
    let _ = writeln!(
        html,
        "<form method=\"post\" action=\"/\"><input name=\"name\" placeholder=\"Your name\" maxlength=\"{MAX_NAME}\" required> \
         <input name=\"message\" placeholder=\"Say something\" maxlength=\"{MAX_MESSAGE}\" size=\"40\" required> \
         <button>Sign</button></form>\n<ul>"
    );
    for e in entries {
        let _ = writeln!(
            html,
            "<li><span class=\"who\">{}</span>: {} <span class=\"when\">{}</span></li>",
            escape(&e.name),
            escape(&e.message),
            escape(&e.created)
        );
    }
    let _ = write!(html, "</ul>\n<p class=\"when\">served by {}</p>\n</body></html>\n", escape(served_by));
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_inject_markup() {
        let e = Entry { id: 1, name: "<script>".into(), message: "a & \"b\" 'c'".into(), created: "now".into() };
        let html = render(&[e], Some("<b>"), "t<1>");
        assert!(!html.contains("<script>") && !html.contains("<b>") && !html.contains("t<1>"));
        assert!(html.contains("&lt;script&gt;") && html.contains("a &amp; &quot;b&quot; &#39;c&#39;"));
    }

    #[test]
    fn lists_entries_in_the_order_given() {
        let mk = |id, name: &str| Entry { id, name: name.into(), message: "m".into(), created: String::new() };
        let html = render(&[mk(2, "second"), mk(1, "first")], None, "x");
        assert!(html.find("second").unwrap() < html.find("first").unwrap());
    }
}
