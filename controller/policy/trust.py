"""Trust at apply as pure functions: may a guarded environment take a change, given what
git said about the signatures of the commits that brought it and what the forge said about
the pull request that merged it?

A failed rule refuses with a reason a person can act on (`unsigned commit 1a2b3c4`, `signed
by a key not in allowed_signers`, `approved by 1 of 2 reviewers`, `pushed without a pull
request`). A fact that could not be read (the forge unreachable) never lets a change
through: it waits until the controller asks again. A rollback (a return to a version this
environment served through an applied change) needs signatures, not approvals: it must be
quick, and the version was reviewed once already."""

from __future__ import annotations

from mlflow_gitops.core.plan import GateResult, Verdict
from mlflow_gitops.core.trust import GOOD, EntryTrust, Signature, TrustRules

SIGNED = "signed commits"
APPROVED = "approvals"


def judge(rules: TrustRules, facts: EntryTrust, rollback: bool = False) -> Verdict:
    """The trust verdict for one change: allowed, refused with reasons, or waiting. A bad
    signature refuses even while the forge cannot be asked: no wait for a lost cause."""
    if rules.signed_commits and facts.signatures:
        signed, why = _signatures(facts)
        if not signed.passed:
            return Verdict(False, (signed,), message=why)
    if facts.error:  # never applied unverified: wait for a retry, or refuse saying why
        name = SIGNED if rules.signed_commits and not facts.signatures else APPROVED
        waits = facts.retry_at is not None
        result = GateResult(name, False, "not verified yet" if waits else "cannot verify",
                            rules.describe(rollback), facts.error, facts.retry_at)
        message = f"not verified yet: {facts.error}" if waits else facts.error
        return Verdict(False, (result,), message=message, waiting_until=facts.retry_at)
    results: list[tuple[GateResult, str]] = []
    if rules.signed_commits:
        results.append(_signatures(facts))
    if rules.reviews and not rollback:
        results.append(_approvals(rules.reviews, facts))
    gates = tuple(r for r, _ in results)
    reasons = [why for r, why in results if not r.passed]
    if reasons:
        return Verdict(False, gates, message="; ".join(reasons))
    note = "rollback: signatures checked, approvals not needed" if rollback and rules.reviews \
        else ""
    return Verdict(True, gates, note=note)


def combine(policy: Verdict, trust: Verdict) -> Verdict:
    """The promotion policy's verdict and the trust verdict on the same change, as one: a
    refusal by either refuses; it waits only if everything that refused only waits."""
    if trust.allowed:
        notes = "; ".join(n for n in (policy.note, trust.note) if n)
        return Verdict(policy.allowed, policy.gates + trust.gates, notes, policy.message,
                       policy.waiting_until)
    gates = policy.gates + trust.gates
    if policy.allowed:
        return Verdict(False, gates, message=trust.message, waiting_until=trust.waiting_until)
    waits = (policy.waiting_until, trust.waiting_until)
    until = max(w for w in waits if w is not None) if None not in waits else None
    return Verdict(False, gates, message=f"{policy.message}; {trust.message}",
                   waiting_until=until)


def _signatures(facts: EntryTrust) -> tuple[GateResult, str]:
    required = "a valid signature by an allowed key"
    commits = [facts.commit] + ([facts.merge] if facts.merge != facts.commit else [])
    by_sha = {s.sha: s for s in facts.signatures}
    for sha in commits:
        why = _problem(by_sha.get(sha) or Signature(sha, "N"))
        if why:
            return GateResult(SIGNED, False, why, required), why
    signer = by_sha[facts.commit].signer or by_sha[facts.commit].key
    return GateResult(SIGNED, True, f"signed by {signer}", required), ""


def _problem(sig: Signature) -> str:
    """Why `sig` does not do, in words a person can act on; "" when it does."""
    short = sig.sha[:7]
    if sig.status == "N":
        return f"unsigned commit {short}"
    if sig.status == "B":
        return f"bad signature on commit {short}: its content is not what was signed"
    if sig.status in ("X", "Y"):
        return f"commit {short} is signed by an expired key or signature"
    if sig.status == "R":
        return f"commit {short} is signed by a revoked key"
    if sig.trusted and sig.status in (GOOD, "U"):  # U: a GPG key in the ring, not certified
        return ""
    if sig.status in (GOOD, "U") or (sig.status == "E" and sig.kind == "gpg"):
        allowed = "allowed_signers" if sig.kind == "ssh" else "the allowed GPG keys"
        key = f" ({sig.key})" if sig.key else ""
        return f"commit {short} signed by a key not in {allowed}{key}"
    return f"the signature of commit {short} cannot be checked ({sig.status})"


def _approvals(reviews: int, facts: EntryTrust) -> tuple[GateResult, str]:
    required = f">= {reviews} approving reviews, the author's own not counted"
    found = facts.approvals
    if found is None or not found.pull:
        why = "pushed without a pull request"
        return GateResult(APPROVED, False, f"commit {facts.commit[:7]}: no merged pull request",
                          required), why
    count = len(found.approvers)
    actual = f"{found.pull}: {count} approving ({', '.join(found.approvers) or 'none'})"
    if count >= reviews:
        return GateResult(APPROVED, True, actual, required), ""
    why = f"approved by {count} of {reviews} reviewers"
    if found.author_approved:
        why += " (the author's own approval does not count)"
    return GateResult(APPROVED, False, actual, required, found.pull), why
