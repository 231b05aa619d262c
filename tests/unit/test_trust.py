"""Trust at apply as pure rules: reasons people can act on, waits that never let a change
through, rollbacks that need signatures only, and the `trust:` config checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_gitops.adapters.config import load_config
from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.trust import Approvals, EntryTrust, Signature, TrustRules
from mlflow_gitops.policy.trust import combine, judge

C, M = "1a2b3c4" + "0" * 33, "9f8e7d6" + "0" * 33
BOTH = TrustRules(frozenset({"production"}), signed_commits=True, reviews=2)
GOOD = (Signature(C, "G", "SHA256:k", "alice", "ssh", True),
        Signature(M, "G", "SHA256:k", "alice", "ssh", True))


def test_every_refusal_reads_as_what_to_do() -> None:
    """Unsigned, another key, too few approvals and a direct push each say so."""
    unsigned = EntryTrust(C, C, (Signature(C, "N"),), Approvals("#1", "ada", ("bob", "cyd")))
    assert judge(BOTH, unsigned).message == "unsigned commit 1a2b3c4"
    other = EntryTrust(C, C, (Signature(C, "U", "SHA256:x", "", "ssh"),))
    assert judge(BOTH, other).message.startswith(
        "commit 1a2b3c4 signed by a key not in allowed_signers (SHA256:x)")
    few = EntryTrust(C, M, GOOD, Approvals("#1", "ada", ("bob",), author_approved=True))
    assert judge(BOTH, few).message == \
        "approved by 1 of 2 reviewers (the author's own approval does not count)"
    pushed = EntryTrust(C, M, GOOD, Approvals())
    assert judge(BOTH, pushed).message == "pushed without a pull request"
    assert judge(BOTH, EntryTrust(C, M, GOOD, Approvals("#1", "ada", ("bob", "cyd")))).allowed


def test_the_merge_commit_must_be_signed_too() -> None:
    """A signed change brought in by an unsigned merge commit is refused."""
    facts = EntryTrust(C, M, (GOOD[0], Signature(M, "N")),
                       Approvals("#1", "ada", ("bob", "cyd")))
    assert judge(BOTH, facts).message == "unsigned commit 9f8e7d6"


def test_a_rollback_needs_signatures_not_approvals() -> None:
    """A return to a version the environment served is allowed without reviews, not unsigned."""
    assert judge(BOTH, EntryTrust(C, M, GOOD, Approvals()), rollback=True).allowed
    unsigned = EntryTrust(C, C, (Signature(C, "N"),), Approvals())
    assert judge(BOTH, unsigned, rollback=True).message == "unsigned commit 1a2b3c4"


def test_an_unreadable_fact_waits_or_refuses_never_allows() -> None:
    """A forge error with a retry time waits until then; one without refuses."""
    waiting = judge(BOTH, EntryTrust(C, M, GOOD, error="forge down", retry_at=50.0))
    assert (waiting.allowed, waiting.waiting_until) == (False, 50.0)
    refused = judge(BOTH, EntryTrust(C, M, error="allowed_signers_file cannot be read"))
    assert (refused.allowed, refused.waiting_until) == (False, None)


def test_a_bad_signature_refuses_even_while_the_forge_is_down() -> None:
    """A known-bad signature is a refusal now, not a wait for the forge to come back."""
    facts = EntryTrust(C, C, (Signature(C, "N"),), error="forge down", retry_at=50.0)
    verdict = judge(BOTH, facts)
    assert (verdict.message, verdict.waiting_until) == ("unsigned commit 1a2b3c4", None)


def test_combine_refuses_if_either_refuses_and_waits_only_if_both_wait() -> None:
    """A soak wait plus a trust refusal is a refusal; two waits wait for the later."""
    soak = Verdict(False, message="fraud v2 not promoted: soak", waiting_until=10.0)
    trust_wait = Verdict(False, message="not verified yet", waiting_until=20.0)
    trust_no = Verdict(False, message="unsigned commit 1a2b3c4")
    assert combine(soak, trust_wait).waiting_until == 20.0
    merged = combine(soak, trust_no)
    assert merged.waiting_until is None and merged.message.endswith("unsigned commit 1a2b3c4")
    assert combine(Verdict(True), Verdict(True, note="n")).note == "n"


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("text", "message"), [
    ("trust:\n  environments: [production]\n", "config.yaml:1: trust: name at least one rule"),
    ("trust:\n  environments: [production]\n  approvals:\n    reviews: 2\n",
     "config.yaml:1: trust: approvals are read from the forge: add a forge: section"),
    ("trust:\n  environments: []\n  approvals:\n    reviews: 1\n", "trust.environments"),
    ("trust:\n  environments: [production]\n  signed_commits: {}\n",
     "give allowed_signers_file (SSH keys), gpg_public_keys_file"),
    ("forge: {}\ntrust:\n  environments: [production]\n  approvals:\n    reviews: 0\n",
     "trust.approvals.reviews"),
])
def test_a_wrong_trust_section_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    """No rule, approvals without a forge, no environment, no keys, zero reviews: one line."""
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, text))
    assert message in str(caught.value) and "\n" not in str(caught.value)
