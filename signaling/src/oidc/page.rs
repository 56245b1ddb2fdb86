//! The pages a person sees when single sign-on does not let them in: plain HTML in the web
//! client's style (its `/style.css`, no script, so the Content-Security-Policy holds), saying
//! what happened and what to do, with a way to try again and a way back to the start page.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// One page: its heading, what happened, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: StatusCode,
    pub title: &'static str,
    pub reason: String,
    pub advice: &'static str,
}

impl Page {
    pub fn new(
        status: StatusCode,
        title: &'static str,
        reason: String,
        advice: &'static str,
    ) -> Self {
        Page {
            status,
            title,
            reason,
            advice,
        }
    }

    /// The page as HTML, every text escaped.
    pub fn html(&self) -> String {
        format!(
            r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <title>{title} · Aula</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/style.css">
</head>
<body>
  <header class="topbar">
    <span class="brand" aria-hidden="true">Aula</span>
    <p class="title">Staff sign-in</p>
  </header>
  <main id="main">
    <section class="panel fatal" aria-labelledby="sso-title">
      <h1 id="sso-title" class="title">{title}</h1>
      <p id="sso-reason">{reason}</p>
      <p id="sso-advice">{advice}</p>
      <p class="row"><a class="button primary" href="/auth/oidc/start">Try again</a><a class="button" href="/">Back to the start page</a></p>
    </section>
  </main>
</body>
</html>
"#,
            title = escape(self.title),
            reason = escape(&self.reason),
            advice = escape(self.advice),
        )
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.html(),
        )
            .into_response()
    }
}

/// Text made safe inside HTML elements and attribute values.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_escaped() {
        let page = Page::new(
            StatusCode::FORBIDDEN,
            "Not let in",
            "<script>alert('x')</script>@evil\"".into(),
            "Ask & wait.",
        );
        let html = page.html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;@evil&quot;"));
        assert!(html.contains("Ask &amp; wait."));
        assert!(html.contains(r#"<link rel="stylesheet" href="/style.css">"#));
    }
}
