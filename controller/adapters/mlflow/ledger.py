"""The ledger in an MLflow experiment (default `mlflow-gitops-ledger`) of the registry it
records: one run per record, so anyone with plain `MlflowClient.search_runs` reads it.

A run's tags hold the record's fields by their plain names (`environment`, `name`, `action`,
`version`, `from_version`, `to_version`, `commit`, `merged_by`, `reason`, `seq` zero-padded
so that it sorts, `prev_hash`, `hash`, ...); the run's start time is the record's time (the
controller's clock), so reads filter on `attributes.start_time` and `tags.environment` /
`tags.name` on the server and page through the answer. The experiment tag
`mlflow_gitops.head` = "<seq> <hash>" is the last record appended, which tells a deleted last
record from no record. Writes: per record one `create_run` (every tag in the creating call)
and one `update_run` (FINISHED), per batch one experiment tag."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from mlflow_gitops.adapters.mlflow.client import call
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.errors import InvalidRequest, NotFound, RegistryError
from mlflow_gitops.core.ledger import Entry, Head, Query, Record

DEFAULT_EXPERIMENT = "mlflow-gitops-ledger"
HEAD_TAG = "mlflow_gitops.head"
PAGE = 5000  # runs per search page (MLflow's cap is 50,000)
#: The first page of a newest-first read: such reads (`history --at`, the timeline) usually
#: stop within a few records, and the server's cost grows with the runs it returns.
FIRST_PAGE = 100
_SEQ_WIDTH = 12
EVERYTHING = Query()
_FIELDS = ("registry", "environment", "kind", "name", "action", "version", "from_version",
           "to_version", "commit", "merged_by", "reason", "version_created_ms", "detail")
_INTS = {"version", "from_version", "to_version", "version_created_ms"}


class MlflowLedger:
    """The ledger of one registry. Every method raises mlflow_gitops.core.errors.RegistryError
    (the caller decides: the controller queues and retries, a command says so and exits 1)."""

    def __init__(self, registry: MlflowRegistry, experiment: str = DEFAULT_EXPERIMENT):
        self.registry = registry
        self.experiment = experiment
        self._experiment_id: str | None = None
        self.writes = 0  # registry calls made for the ledger (bench)

    # -- the experiment -----------------------------------------------------------------------

    def _lookup(self) -> tuple[str, dict[str, str]] | None:
        """(experiment id, tags), or None where the experiment does not exist yet."""
        if self.registry.is_rest:
            try:
                body = self.registry.get("experiments/get-by-name",
                                         {"experiment_name": self.experiment})
            except NotFound:
                return None
            exp = body.get("experiment", {})
            if exp.get("lifecycle_stage") == "deleted":
                raise InvalidRequest(f"the ledger experiment '{self.experiment}' was deleted; "
                                     "restore it in MLflow (its records are evidence)")
            return str(exp["experiment_id"]), {t["key"]: t.get("value", "")
                                               for t in exp.get("tags", ())}
        store = self.registry.tracking_store
        exp = call(lambda: store.get_experiment_by_name(self.experiment))
        if exp is None:
            return None
        return str(exp.experiment_id), dict(exp.tags or {})

    def experiment_id(self, create: bool = False) -> str | None:
        if self._experiment_id is None:
            found = self._lookup()
            if found is None and create:
                store = self.registry.tracking_store
                try:
                    self._experiment_id = str(call(lambda: store.create_experiment(
                        self.experiment, tags=_experiment_tags())))
                    self.writes += 1
                except InvalidRequest:  # another writer created it first
                    found = self._lookup()
            if found is not None:
                self._experiment_id = found[0]
        return self._experiment_id

    # -- reads --------------------------------------------------------------------------------

    def stored_head(self) -> Head | None:
        """What the experiment says was appended last (None: no ledger, or no head yet)."""
        found = self._lookup()
        if found is None:
            return None
        return _parse_head(found[1].get(HEAD_TAG, ""))

    def head(self) -> Head:
        """The record to chain onto: the stored head, moved on past any record written after
        it (a write whose head update failed). A deleted last record keeps its number taken.
        One equality search per step: ordering by a tag costs MLflow's SQL store a sort over
        every run (tens of seconds at 30,000 records, BENCHMARKS.md)."""
        exp = self.experiment_id()
        if exp is None:
            return Head()
        head = self.stored_head() or Head()
        while True:
            after = self.at_seq(head.seq + 1)
            if not after:
                return head
            head = Head(head.seq + 1, min(r.hash for r in after))

    def read(self, query: Query = EVERYTHING) -> list[Record]:
        return list(self.iter(query))

    def iter(self, query: Query = EVERYTHING) -> Iterator[Record]:
        """Records matching `query`, a page at a time (the caller may stop early)."""
        exp = self.experiment_id()
        if exp is None:
            return
        order = "DESC" if query.newest_first else "ASC"
        filters, leftover = _filter(query)
        count = 0
        # By time only: ordering by a tag (seq) makes MLflow's SQL store sort every run.
        for page in self._pages(exp, filters, [f"attributes.start_time {order}"], PAGE,
                                first=FIRST_PAGE if query.newest_first else PAGE):
            found = [r for r in map(_parse_run, page) if r is not None and leftover(r)]
            found.sort(key=lambda r: (r.at_ms, r.seq), reverse=query.newest_first)
            for record in found:
                yield record
                count += 1
                if query.limit is not None and count >= query.limit:
                    return

    def at_seq(self, seq: int) -> list[Record]:
        """Every record that claims `seq` (more than one: a fork)."""
        exp = self.experiment_id()
        if exp is None:
            return []
        runs = next(self._pages(exp, f"tags.seq = '{seq:0{_SEQ_WIDTH}d}'", [], 100), [])
        return [r for r in (_parse_run(run) for run in runs) if r is not None]

    def _pages(self, experiment_id: str, filter_string: str, order_by: list[str], size: int,
               first: int | None = None) -> Iterator[list[dict[str, Any]]]:
        token: str | None = None
        page = first or size
        while True:
            runs, token = self._search(experiment_id, filter_string, order_by, page, token)
            page = size
            yield runs
            if not token:
                return

    def _search(self, experiment_id: str, filter_string: str, order_by: list[str], size: int,
                token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        if self.registry.is_rest:
            body: dict[str, Any] = {"experiment_ids": [experiment_id], "filter": filter_string,
                                    "max_results": size, "order_by": order_by,
                                    "run_view_type": "ACTIVE_ONLY"}
            if token:
                body["page_token"] = token
            answer = self.registry.post("runs/search", body)
            return list(answer.get("runs", ())), answer.get("next_page_token") or None
        store = self.registry.tracking_store
        from mlflow.entities import ViewType

        page = call(lambda: store.search_runs([experiment_id], filter_string,
                                              ViewType.ACTIVE_ONLY, size, order_by, token))
        return [_run_dict(run) for run in page], page.token or None

    # -- writes -------------------------------------------------------------------------------

    def write(self, records: Sequence[Record]) -> tuple[int, str | None]:
        """Append `records` in order: how many were written, and the error that stopped the
        rest (None: all). The head tag follows the last one written."""
        if not records:
            return 0, None
        written, failure = 0, None
        try:
            exp = self.experiment_id(create=True)
            assert exp is not None
            for record in records:
                self._append(exp, record)
                written += 1
        except RegistryError as exc:
            failure = str(exc)
        if written:
            last = records[written - 1]
            try:
                self._set_head(Head(last.seq, last.hash))
            except RegistryError as exc:  # the records are in; the next head read finds them
                failure = failure or f"head not updated: {exc}"
        return written, failure

    def _append(self, experiment_id: str, record: Record) -> None:
        from mlflow.entities import RunStatus, RunTag

        store = self.registry.tracking_store
        tags = [RunTag(k, v) for k, v in run_tags(record).items()]
        name = run_name(record)
        run = call(lambda: store.create_run(
            experiment_id=experiment_id, user_id=record.writer or "mlflow-gitops",
            start_time=record.at_ms, tags=tags, run_name=name))
        self.writes += 1
        call(lambda: store.update_run_info(run.info.run_id, RunStatus.to_string(
            RunStatus.FINISHED), record.at_ms, name))
        self.writes += 1

    def _set_head(self, head: Head) -> None:
        from mlflow.entities import ExperimentTag

        store = self.registry.tracking_store
        exp = self.experiment_id()
        call(lambda: store.set_experiment_tag(exp, ExperimentTag(HEAD_TAG,
                                                                 f"{head.seq} {head.hash}")))
        self.writes += 1


def run_name(record: Record) -> str:
    e = record.entry
    before = f"v{e.from_version}" if e.from_version is not None else "none"
    after = f"v{e.to_version}" if e.to_version is not None else "none"
    return f"#{record.seq} {e.environment} {e.name} {before} → {after} ({e.reason})"


def run_tags(record: Record) -> dict[str, str]:
    """The run tags of one record: its fields by plain name, strings only."""
    e = record.entry
    tags = {name: _text(getattr(e, name)) for name in _FIELDS}
    tags.update(seq=f"{record.seq:0{_SEQ_WIDTH}d}", prev_hash=record.prev_hash,
                hash=record.hash, writer=record.writer,
                at=datetime.fromtimestamp(e.at_ms / 1000, timezone.utc).isoformat(
                    timespec="milliseconds"))
    return tags


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _experiment_tags() -> list[Any]:
    from mlflow.entities import ExperimentTag

    return [ExperimentTag("mlflow.note.content",
                          "The mlflow-gitops ledger: one run per change written to this "
                          "registry. Do not edit or delete runs: `mlflow-gitops audit verify` "
                          "detects it.")]


def _parse_head(raw: str) -> Head | None:
    match = re.fullmatch(r"(\d+) ([0-9a-f]{64})", raw.strip())
    return Head(int(match.group(1)), match.group(2)) if match else None


def _run_dict(run: Any) -> dict[str, Any]:
    """An MLflow Run entity in the REST API's JSON shape (what _parse_run reads)."""
    return {"info": {"run_id": run.info.run_id, "start_time": run.info.start_time},
            "data": {"tags": [{"key": k, "value": v} for k, v in run.data.tags.items()]}}


def _parse_run(run: dict[str, Any]) -> Record | None:
    """A run as a record; None for a run that is no ledger record at all (no seq). A record
    whose fields do not parse still comes back (with what could be read), so its hash fails
    and `audit verify` names it instead of skipping it."""
    info = run.get("info", {})
    tags = {t["key"]: t.get("value", "") for t in run.get("data", {}).get("tags", ())}
    try:
        seq = int(tags.get("seq", ""))
    except ValueError:
        return None
    fields: dict[str, Any] = {}
    for name in _FIELDS:
        raw = tags.get(name, "")
        if name in _INTS:
            fields[name] = int(raw) if raw.lstrip("-").isdigit() else None
        else:
            fields[name] = raw
    if fields["version"] is None:
        fields["version"] = 0
    try:
        at_ms = int(info.get("start_time") or 0)
    except (TypeError, ValueError):
        at_ms = 0
    entry = Entry(at_ms=at_ms, **fields)
    return Record(entry, seq, tags.get("prev_hash", ""), tags.get("hash", ""),
                  tags.get("writer", ""), str(info.get("run_id", "")))


def _quote(value: str) -> str | None:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None


def _filter(query: Query) -> tuple[str, Any]:
    """The server-side filter string, and a predicate for what it could not express."""
    parts: list[str] = []
    local: list[Any] = []
    for key, value in (("environment", query.environment), ("name", query.name)):
        if value is None:
            continue
        quoted = _quote(value)
        if quoted is None:
            local.append(lambda r, k=key, v=value: getattr(r.entry, k) == v)
        else:
            parts.append(f"tags.{key} = {quoted}")
    if query.since_ms is not None:
        parts.append(f"attributes.start_time >= {int(query.since_ms)}")
    if query.until_ms is not None:
        parts.append(f"attributes.start_time <= {int(query.until_ms)}")
    return " and ".join(parts), (lambda r: all(f(r) for f in local))
