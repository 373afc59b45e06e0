//! `pid.toml(5)`: every configuration key, from `pid::config::reference` (whose tests tie it to
//! the parser), and the policy actions, from the table the policy loader checks them against.

use crate::page::{term, Page};
use clap_mangen::roff::roman;
use pid::config::reference::{Section, SECTIONS};
use pid::policy::{Action, Scope};
use protocol::paths::DEFAULT_CONFIG;

pub(crate) fn page() -> String {
    let mut page = Page::new("pid.toml", "5");
    page.section("NAME")
        .paragraph("pid.toml - configuration of the pi daemon");
    page.section("SYNOPSIS").paragraph(DEFAULT_CONFIG);
    page.section("DESCRIPTION")
        .paragraph(
            "pid(8) reads its configuration from this TOML file. Every key has a default, so \
             an empty file works. An unknown key, a value of the wrong type or out of its range \
             is an error that names the file, the line and the key, and pid does not start with \
             it.",
        )
        .paragraph(
            "pid --check-config FILE validates a file and prints the effective configuration. \
             SIGHUP (systemctl reload pid) reads the file again: a file that does not validate \
             is refused and the running configuration stays. Keys marked \"applies at the next \
             restart\" keep their old value until then.",
        );
    for section in SECTIONS {
        write_section(&mut page, section);
    }
    write_actions(&mut page);
    page.section("EXAMPLES").literal(EXAMPLE);
    page.section("FILES").item(
        term(DEFAULT_CONFIG, ""),
        "The configuration pid reads unless started with --config FILE.",
    );
    page.see_also("pid.toml", &[]);
    page.render()
}

fn write_section(page: &mut Page, section: &Section) {
    let heading = match (section.header, section.variant) {
        ("", _) => "TOP-LEVEL KEYS".to_owned(),
        (header, "") => header.to_owned(),
        (header, variant) => format!("{header} with {variant}"),
    };
    page.section(&heading).paragraph(section.about);
    if !section.needs.is_empty() {
        page.paragraph("Every such table needs at least:");
        let header = if section.header.is_empty() {
            String::new()
        } else {
            format!("{}\n", section.header)
        };
        page.literal(&format!("{header}{}", section.needs));
    }
    for key in section.keys {
        let lines = [
            key.meaning,
            &format!("Type: {}. Default: {}.", key.kind, key.default),
        ];
        page.item_lines(term(key.key, ""), &lines);
    }
}

/// The actions a `[[policy]]` may set, by scope, in the order the loader knows them.
fn write_actions(page: &mut Page) {
    page.section("POLICY ACTIONS").paragraph(
        "The keys of a policy's actions table, by scope. pid refuses a policy naming an action \
         it does not know or one of another scope, so no rule is ever silently ignored. pictl \
         policy check shows which policies apply to a login and what they decide.",
    );
    for (scope, name) in [
        (Scope::Authentication, "authentication"),
        (Scope::Enrollment, "enrollment"),
        (Scope::User, "user"),
        (Scope::Admin, "admin"),
    ] {
        let names: Vec<&str> = Action::ALL
            .iter()
            .filter(|a| a.scopes().contains(&scope))
            .map(|a| a.name())
            .collect();
        page.subsection(&format!("scope = \"{name}\""));
        page.inlines(vec![roman(names.join(", "))]);
    }
}

const EXAMPLE: &str = r#"version = 1
admin_group = "pi-admin"

[tokens]
maxfail = 5
issuer = "ACME ssh"

[resolvers.local]
type = "passwd"

[resolvers.corp]
type = "ldap"
uri = "ldaps://ldap.example.org"
base = "ou=people,dc=example,dc=org"

[realms.default]
resolvers = ["local"]

[realms.corp]
resolvers = ["corp"]

[[policy]]
name = "rollout"
scope = "authentication"
realm = ["corp"]
actions = { passOnNoToken = true }"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_a_valid_configuration() {
        pid::config::Config::parse(EXAMPLE, "pid.toml(5) EXAMPLES").unwrap();
    }

    #[test]
    fn every_policy_action_is_listed() {
        let text = page();
        for action in Action::ALL {
            assert!(text.contains(action.name()), "{}", action.name());
        }
    }
}
