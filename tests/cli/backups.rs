//! `gatehouse solutions` and `gatehouse artifacts download` on the scenario's server.

use serde_json::json;

use crate::World;

/// `solutions` and `artifacts download`, once contoso_expenses 1.0.0.0 went to qa, then
/// through `prod` (a deployment id) to prod.
pub fn solutions_and_backups(w: &World, prod: &str) {
    let all = w.alice.run("solutions").expect(0).stdout;
    for env in ["qa", "prod"] {
        let line = all
            .lines()
            .find(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.first() == Some(&"contoso_expenses") && cells.get(2) == Some(&env)
            })
            .unwrap_or_else(|| panic!("no line for contoso_expenses in {env}:\n{all}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            (cells[1], cells[3], cells[4], cells[6]),
            ("1.0.0.0", "installed", "maker", "stored"),
            "{all}"
        );
    }
    let one = w.maker.json("solutions contoso_expenses");
    let items = one["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{one:#}");
    let in_prod = items[0]["installations"]
        .as_array()
        .and_then(|list| list.iter().find(|i| i["environment_name"] == "prod"))
        .unwrap_or_else(|| panic!("no installation in prod: {one:#}"));
    assert_eq!(
        (
            &in_prod["deployment_id"],
            &in_prod["requested_by_name"],
            &in_prod["current"]
        ),
        (&json!(prod), &json!("maker"), &json!(true)),
        "{one:#}"
    );
    let unknown = w.maker.run("solutions contoso_nothing").expect(2);
    assert!(
        unknown.stderr.contains("contoso_nothing"),
        "{}",
        unknown.stderr
    );

    // The backup: streamed to a file, the same bytes as the host's record says.
    let dir = tempfile::tempdir().expect("a temp dir");
    let folder = dir.path().to_str().expect("a UTF-8 path");
    let download = ["artifacts", "download", "contoso_expenses", "1.0.0.0"];
    let saved = w
        .maker
        .run_args(&[&download[..], &["-o", folder]].concat())
        .expect(0)
        .stdout;
    let file = dir.path().join("contoso_expenses_1.0.0.0_managed.zip");
    assert!(saved.contains(&file.display().to_string()), "{saved}");
    let bytes = std::fs::read(&file).expect("the backup was written");
    assert!(bytes.starts_with(b"PK"), "a zip");
    let artifacts = w
        .api()
        .get("/artifacts?solution=contoso_expenses")
        .expect(200);
    let record = &artifacts["items"][0];
    assert_eq!(record["version"], "1.0.0.0", "{artifacts:#}");
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    assert_eq!(record["managed"]["sha256"], json!(sha256), "{artifacts:#}");
    let leftovers = std::fs::read_dir(dir.path()).expect("list").count();
    assert_eq!(leftovers, 1, "only the backup, no partial file");

    // An existing file is kept unless --force; the unmanaged package is the other one.
    std::fs::write(&file, b"mine").expect("overwritten by hand");
    let refused = w
        .maker
        .run_args(&[&download[..], &["-o", folder]].concat())
        .expect(2);
    assert!(
        refused.stderr.contains("exists already") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read(&file).expect("kept"), b"mine");
    w.maker
        .run_args(&[&download[..], &["-o", folder, "--force"]].concat())
        .expect(0);
    assert_eq!(std::fs::read(&file).expect("replaced"), bytes);
    let unmanaged = dir.path().join("copy.zip");
    let unmanaged_path = unmanaged.to_str().expect("a UTF-8 path");
    w.maker
        .run_args(&[&download[..], &["--unmanaged", "-o", unmanaged_path]].concat())
        .expect(0);
    let other = std::fs::read(&unmanaged).expect("the unmanaged package");
    assert!(other.starts_with(b"PK") && other != bytes);

    // A version without a backup says which versions have one.
    let missing = w
        .maker
        .run("artifacts download contoso_expenses 9.9.9.9")
        .expect(2);
    assert!(
        missing
            .stderr
            .contains("no backup of contoso_expenses 9.9.9.9")
            && missing.stderr.contains("stored are: 1.0.0.0"),
        "{}",
        missing.stderr
    );
}
