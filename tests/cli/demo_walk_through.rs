//! The README's walk-through on `gatehouse demo`, from the command line.

use std::time::{Duration, Instant};

use crate::people::Person;
use crate::{PATIENCE, demo, id};

/// The README's walk-through on `gatehouse demo`, from the command line: what a deploy
/// lacks is said in flags, and approvers and the requester are named as people.
#[test]
fn the_demo_walk_through_speaks_in_flags_and_names() {
    demo::require_plugins();
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("gatehouse-data");
    let running = demo::Demo::start(&data);
    let tokens = demo::tokens(&data);
    let person = |name: &str| {
        let token = tokens["users"][name].as_str().expect("a token").to_owned();
        let mut who = Person {
            id: String::new(),
            token,
            config: dir.path().join(name).join("cli.json"),
        };
        let mut command = who.command(&["login", "--server", &running.base]);
        command.env("GATEHOUSE_TOKEN", &who.token);
        who.start_with(command, &["login"], None).finish().expect(0);
        who.id = id(&who.json("me"));
        who
    };
    let (maker, alice, bob) = (person("maker"), person("alice"), person("bob"));

    // Without its settings, the deployment fails validation, and says which flags to add.
    let deploy = [
        "deploy",
        "--pipeline",
        "Contoso Expenses",
        "--solution",
        "contoso_expenses",
        "--version",
        "1.0.0.1",
    ];
    let qa = [&deploy[..], &["--stage", "QA", "--wait"]].concat();
    let failed = maker.run_args(&qa).expect(1);
    let said = format!("{}\n{}", failed.stdout, failed.stderr);
    for wanted in [
        "failed validation with 2 error(s)",
        "connection reference contoso_sql needs a sql connection; bind it with \
         --connection contoso_sql=CONNECTION",
        "environment variable contoso_ApiUrl needs a value: it has no default; give it with \
         --set contoso_ApiUrl=VALUE",
    ] {
        assert!(said.contains(wanted), "{wanted:?} in:\n{said}");
    }
    assert!(!said.contains("settings."), "CLI terms only:\n{said}");

    let settings = [
        "--set",
        "contoso_ApiUrl=https://api.contoso.test",
        "--connection",
        "contoso_sql=shared-sql",
    ];
    maker.run_args(&[&qa[..], &settings[..]].concat()).expect(0);
    let notes = ["--stage", "Production", "--notes", "expense limits raised"];
    let prod = id(&maker.json_args(&[&deploy[..], &settings[..], &notes[..]].concat()));
    let approvable = |who: &Person| {
        let deadline = Instant::now() + PATIENCE;
        while !who.json("approvals")["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|d| d["id"] == prod.as_str()))
        {
            assert!(Instant::now() < deadline, "never approvable");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    approvable(&alice);
    let first = alice
        .run(&format!("approve {prod} -m looks-good"))
        .expect(0)
        .stdout;
    assert!(first.contains("1 of 2 approvals"), "{first}");
    approvable(&bob);
    let last = bob.run(&format!("approve {prod} -m ok")).expect(0).stdout;
    assert!(
        last.contains("every gate approved")
            && (last.contains("deploying contoso_expenses 1.0.0.1 to Production")
                || last.contains("succeeded: contoso_expenses 1.0.0.1 is installed in Production")),
        "{last}"
    );
    maker.run(&format!("deployments wait {prod}")).expect(0);

    let shown = maker
        .run(&format!("deployments get {prod}"))
        .expect(0)
        .stdout;
    for wanted in [
        "by Mona Maker",
        "Alice Approver  approve: looks-good",
        "approve by Bob Approver: ok",
        "environments    Development → Production",
        "Bob Approver    approve: ok",
    ] {
        assert!(shown.contains(wanted), "{wanted:?} in:\n{shown}");
    }
    for who in [&maker, &alice, &bob] {
        assert!(!shown.contains(&who.id), "{} in:\n{shown}", who.id);
    }
    let installed = maker.run("solutions contoso_expenses").expect(0).stdout;
    for env in ["QA", "Production"] {
        assert!(
            installed.lines().any(|l| l.contains(env)
                && l.contains("1.0.0.1")
                && l.contains("Mona Maker")
                && l.ends_with("stored")),
            "{env} in:\n{installed}"
        );
    }
}
