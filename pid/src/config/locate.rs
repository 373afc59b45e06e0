//! Which line of pid.toml a problem is on, found from the key it is about.

use super::error::Key;

/// The line `key` is on: a policy's action or condition (else the line naming the policy), a
/// key of a resolver or realm table (else the table's header), or a top-level key or section.
/// `None` if the text has no such line.
pub(super) fn locate(text: &str, key: &Key) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let key_of = |line: &str| -> Option<String> {
        let (k, _) = line.split_once('=')?;
        let k = k.trim().trim_start_matches('{').trim();
        (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| k.to_owned())
    };
    // Within lines[start..end], the line setting `wanted` (also inside inline tables such as
    // `actions = { a = 1, b = 2 }`).
    let key_line = |start: usize, end: usize, wanted: &str| -> Option<usize> {
        (start..end).find(|&i| {
            lines[i]
                .split([',', '{'])
                .filter_map(key_of)
                .any(|k| k == wanted)
        })
    };
    let block_end = |start: usize| {
        (start + 1..lines.len())
            .find(|&i| lines[i].trim_start().starts_with('['))
            .unwrap_or(lines.len())
    };
    let policy = |name: &str, at: Option<&str>| {
        let start = lines.iter().position(|l| {
            key_of(l).as_deref() == Some("name")
                && l.split_once('=').map(|(_, v)| v.trim().trim_matches('"')) == Some(name)
        })?;
        let begin = (0..=start)
            .rev()
            .find(|&i| lines[i].trim_start().starts_with("[[policy]]"))
            .unwrap_or(start);
        at.and_then(|at| key_line(begin, block_end(begin), at))
            .or(Some(start))
            .map(|i| i + 1)
    };
    match key {
        Key::Policy { name, at } => policy(name, at.as_deref()),
        Key::Conflict { first, action, .. } => policy(first, Some(action)),
        Key::Table { table, name, key } => {
            let header = format!("[{}.{name}]", table.name());
            let start = lines.iter().position(|l| l.trim() == header)?;
            key.and_then(|k| key_line(start + 1, block_end(start), k))
                .or(Some(start))
                .map(|i| i + 1)
        }
        Key::Top(path) => {
            let first = path.split('.').next().unwrap_or_default();
            lines
                .iter()
                .position(|l| {
                    key_of(l).as_deref() == Some(first) || l.trim() == format!("[{first}]")
                })
                .map(|i| i + 1)
        }
    }
}
