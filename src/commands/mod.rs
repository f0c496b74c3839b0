//! One module per subcommand: argument definitions, terminal output and progress bars. Anything
//! worth testing without a terminal belongs in a library crate instead.

pub mod audit;
pub mod bench;
pub mod bench_api;
pub mod bench_incremental;
pub mod catalogue;
pub mod check;
pub mod demo;
pub mod divisions;
pub mod eval;
pub mod explain;
pub mod grant;
pub mod identity;
pub mod ingest;
pub mod link;
pub mod population;
pub mod quality;
pub mod quarantine;
pub mod reclean;
pub mod resolve;
pub mod serve;
pub mod show;
pub mod source;
pub mod store_args;
pub mod synth;
pub mod watch;

use indicatif::{ProgressBar, ProgressStyle};

/// `text` padded with spaces to `width` columns of a terminal, left-aligned. Chinese characters
/// take two columns each, so `format!("{:<16}")`, which counts characters, leaves tables of
/// names and addresses ragged; this counts columns as terminals draw them (Unicode's East Asian
/// width). Text already wider is given whole.
pub fn left(text: &str, width: usize) -> String {
    let shown = unicode_width::UnicodeWidthStr::width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(shown)))
}

/// `text` padded to `width` terminal columns, right-aligned (see [`left`]).
pub fn right(text: &str, width: usize) -> String {
    let shown = unicode_width::UnicodeWidthStr::width(text);
    format!("{}{text}", " ".repeat(width.saturating_sub(shown)))
}

/// A progress bar in the house style, hidden when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_string());
    pb
}

/// Moves `pb` to `counter` ten times a second until the returned task is aborted: work that
/// counts its progress in an atomic (bytes read, records examined) shows it without knowing
/// about terminals.
pub fn tick_from(
    pb: &ProgressBar,
    counter: &std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    let (pb, counter) = (pb.clone(), counter.clone());
    tokio::spawn(async move {
        loop {
            pb.set_position(counter.load(std::sync::atomic::Ordering::Relaxed));
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
}

#[cfg(test)]
mod padding_tests {
    use super::{left, right};

    #[test]
    fn chinese_text_is_padded_by_the_columns_it_takes() {
        assert_eq!(left("唯亭社区", 10), "唯亭社区  ");
        assert_eq!(right("张三", 6), "  张三");
        assert_eq!(left("ab", 4), "ab  ");
        // Wider than asked: whole, no padding.
        assert_eq!(left("古娄一村社区居委会", 10), "古娄一村社区居委会");
    }
}
