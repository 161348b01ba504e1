"""G4 hmac-policy: every place that runs the ingest gate enforces signatures."""

from __future__ import annotations

from tests.unit.test_verify_nets import INGEST_ACTION, INGEST_YML, make_repo

SECOND_INGEST = """\
name: backfill
on: workflow_dispatch
permissions: {}
jobs:
  backfill:
    runs-on: ubuntu-latest
    steps:
      - name: Re-ingest
        run: tw-gates ingest --artifact old/*.json
"""


def repo_with(tmp_path, **files):
    base = {".github/workflows/ingest.yml": INGEST_YML, "actions/ingest/action.yml": INGEST_ACTION}
    base.update(files)
    return make_repo(tmp_path / "repo", base)


def test_every_ingest_gate_enforced(tmp_path, cli):
    backfill = SECOND_INGEST.replace("    steps:", "    env:\n      POLICY_REQUIRE_HMAC: 'TRUE'\n    steps:")
    repo = repo_with(tmp_path, **{".github/workflows/backfill.yml": backfill})
    code, out, _ = cli("hmac-policy", "--repo-dir", repo)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(
        "ENFORCED .github/workflows/backfill.yml job 'backfill' step 'Re-ingest': POLICY_REQUIRE_HMAC=TRUE (job env"
    )
    assert lines[1].startswith("ENFORCED .github/workflows/ingest.yml job 'ingest' step 'Ingest gate'")
    assert lines[-1] == "G4: POLICY_REQUIRE_HMAC=true at every ingest gate (2/2)"


def test_one_unenforced_ingest_fails_the_gate_even_if_another_enforces(tmp_path, cli):
    repo = repo_with(tmp_path, **{".github/workflows/backfill.yml": SECOND_INGEST})
    code, out, err = cli("hmac-policy", "--repo-dir", repo)
    assert code == 2
    assert (
        "NOT ENFORCED .github/workflows/backfill.yml job 'backfill' step 'Re-ingest': POLICY_REQUIRE_HMAC "
        "is not set (the ingest gate then accepts unsigned artifacts)"
    ) in out
    assert "POLICY_REQUIRE_HMAC is not true at 1 of 2 ingest gate(s)" in err
    # G1's S1 is satisfied by the enforcing one: G4 is the stricter check.
    code, out, _ = cli("verify-nets", "--repo-dir", repo)
    assert "VERIFIED S1" in out


def test_run_time_value_does_not_count(tmp_path, cli):
    backfill = SECOND_INGEST.replace("    steps:", "    env:\n      POLICY_REQUIRE_HMAC: ${{ vars.HMAC }}\n    steps:")
    repo = repo_with(tmp_path, **{".github/workflows/backfill.yml": backfill})
    code, out, _ = cli("hmac-policy", "--repo-dir", repo)
    assert code == 2 and "is not fixed in the repository" in out and "only known at run time" in out


def test_no_ingest_gate_anywhere_fails(tmp_path, cli):
    repo = make_repo(tmp_path / "repo", {".github/workflows/ci.yml": SECOND_INGEST.replace("tw-gates ingest", "make")})
    code, _, err = cli("hmac-policy", "--repo-dir", repo)
    assert code == 2 and "the ingest gate runs in no workflow" in err


def test_explicit_false_is_reported_with_its_source(tmp_path, cli):
    workflow = INGEST_YML.replace(
        "        uses: ./actions/ingest\n",
        "        uses: ./actions/ingest\n        with:\n          require-hmac: 'no'\n",
    )
    code, out, _ = cli("hmac-policy", "--repo-dir", repo_with(tmp_path, **{".github/workflows/ingest.yml": workflow}))
    assert code == 2 and "POLICY_REQUIRE_HMAC='no'" in out and "`with: require-hmac`" in out
