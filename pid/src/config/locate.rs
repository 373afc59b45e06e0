//! Which line of pid.toml an error is about, so the message can say so.

/// The line a validation message is about, found from what the message names: a policy
/// (`policy "NAME"`, then the action or condition it mentions), a resolver or realm table
/// (`resolvers.NAME.KEY`), or a top-level key or section. `None` if nothing matches.
pub(super) fn locate(text: &str, msg: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let key_of = |line: &str| -> Option<String> {
        let (k, _) = line.split_once('=')?;
        let k = k.trim().trim_start_matches('{').trim();
        (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| k.to_owned())
    };
    let words: Vec<&str> = msg
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    // Within lines[start..end], the line setting a key the message names (also inside
    // inline tables such as `actions = { a = 1, b = 2 }`).
    let key_line = |start: usize, end: usize| -> Option<usize> {
        (start..end).find(|&i| {
            lines[i].split([',', '{']).filter_map(key_of).any(|k| {
                k != "name" && k != "scope" && k != "actions" && words.contains(&k.as_str())
            })
        })
    };
    let block_end = |start: usize| {
        (start + 1..lines.len())
            .find(|&i| lines[i].trim_start().starts_with('['))
            .unwrap_or(lines.len())
    };
    if let Some(rest) = msg
        .strip_prefix("policy \"")
        .or_else(|| msg.strip_prefix("policies \""))
    {
        let name = rest.split('"').next()?;
        let start = lines.iter().position(|l| {
            key_of(l).as_deref() == Some("name")
                && l.split_once('=').map(|(_, v)| v.trim().trim_matches('"')) == Some(name)
        })?;
        let begin = (0..=start)
            .rev()
            .find(|&i| lines[i].trim_start().starts_with("[[policy]]"))
            .unwrap_or(start);
        return key_line(begin, block_end(begin))
            .or(Some(start))
            .map(|i| i + 1);
    }
    for table in ["resolvers", "realms"] {
        if let Some(rest) = msg.strip_prefix(&format!("{table}.")) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .collect();
            let name = name.split('.').next().unwrap_or_default();
            let header = format!("[{table}.{name}]");
            let start = lines.iter().position(|l| l.trim() == header)?;
            return key_line(start + 1, block_end(start))
                .or(Some(start))
                .map(|i| i + 1);
        }
    }
    let first = words.first()?;
    lines
        .iter()
        .position(|l| key_of(l).as_deref() == Some(*first) || l.trim() == format!("[{first}]"))
        .map(|i| i + 1)
}
