"""The store's DuckDB queries, in one place. Each is built from a few named fragments
of the schema's own names (a channel's event columns, the attributes, an event's
code) and never from a caller's value: names are checked against the schema before
they get here, and values (limits, widths, labels) go in as parameters."""

from __future__ import annotations

from msgtrail.channels import CHANNEL_EVENTS, EVENT_CODE, EVENTS

# A recipient's attributes, each the value of the event that first carried it.
ATTRIBUTES = ("onesignal_id", "external_id", "device_type", "failure_message")


def _names(names: list[str] | tuple[str, ...], known: tuple[str, ...]) -> str:
    """Column names, each one the schema knows (a guard, not a check of input)."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"not a column of the store: {unknown}")
    return ", ".join(names)


def pivot(channel: str, recs: bool, attributes: tuple[str, ...], held: set[str]) -> str:
    """The pivot's query over `events` (and `i`, each event's place in `rec` order):
    the attributes as the place of the event that first carried each (see
    `pivot.pivot`). An event or attribute not `held` by any event is null."""

    def first(value: str, name: str, of: str, where: str, kind: str) -> str:
        return (f"min({value}) FILTER (WHERE {where}) AS {name}" if of in held
                else f"NULL::{kind} AS {name}")

    _names(attributes, ATTRIBUTES)
    columns = [first("i", a, a, f"{a} IS NOT NULL", "INTEGER") for a in attributes]
    columns += [first("ts", e, e, f"event = {EVENT_CODE[e]}", "BIGINT")
                for e in CHANNEL_EVENTS[channel]]
    if recs:
        columns += [first("rec", f"rec_{e}", e, f"event = {EVENT_CODE[e]}", "BIGINT")
                    for e in CHANNEL_EVENTS[channel]]
    return (f"SELECT subscription_id, {', '.join(columns)} FROM events"
            " GROUP BY subscription_id")


def any_of(events: list[str]) -> str:
    """A filter: only recipients with at least one of these events."""
    return " OR ".join(f"{e} IS NOT NULL" for e in _names(events, EVENTS).split(", ")
                       ) if events else "true"


def page(channel: str, source: str) -> str:
    """What a page holds, before its lines (`pages.with_lines`): each recipient's row of
    `source` (a query of the pivot's columns), in the pivot's column order, in key
    order."""
    return (f"SELECT subscription_id, {', '.join(ATTRIBUTES)},"
            f" {', '.join(CHANNEL_EVENTS[channel])}"
            f" FROM ({source}) ORDER BY subscription_id")


def merged_page_rows(channel: str) -> str:
    """The page rows (`p`) of the recipients with newer events (`d`), merged: an
    attribute is the page's if it has one, else the newer events' first; each time
    is the earlier."""
    return page(channel, "SELECT d.subscription_id, "
                + ", ".join(f"coalesce(p.{a}, d.{a}) AS {a}" for a in ATTRIBUTES) + ", "
                + ", ".join(f"least(p.{e}, d.{e}) AS {e}" for e in CHANNEL_EVENTS[channel])
                + " FROM d LEFT JOIN p ON p.subscription_id = d.subscription_id")


def per_minute(events: list[str]) -> str:
    """Recipients of `r` per event and bucket: parameters, per event, its name and the
    bucket width twice (`per_minute_params`)."""
    return " UNION ALL ".join(
        f"(SELECT ?::VARCHAR, ({e} // ?) * ? AS bucket, count(*) FROM r"
        f" WHERE {e} IS NOT NULL GROUP BY bucket)" for e in _names(events, EVENTS).split(", "))


def per_minute_params(events: list[str], width: int) -> list[object]:
    return [p for e in events for p in (e, width, width)]


def first_recipients(channel: str, events: list[str], after: bool = False,
                     find: bool = False) -> str:
    """The first recipients of `r` by subscription id, those with one of `events` if
    given; with `after`, past a subscription id (the first parameter: keyset paging);
    with `find`, only the one whose subscription id or external id it is (the next two
    parameters, the same text); the last parameter is how many."""
    columns = ", ".join(("subscription_id", *ATTRIBUTES, *CHANNEL_EVENTS[channel]))
    where = [f"({any_of(events)})"]
    # As text: pages keep the ids as text, the pivot as UUIDs; canonical UUIDs sort
    # the same either way.
    if after:
        where.append("CAST(subscription_id AS VARCHAR) > lower(?)")
    if find:
        where.append("(CAST(subscription_id AS VARCHAR) = lower(?) OR external_id = ?)")
    return (f"SELECT {columns} FROM r WHERE {' AND '.join(where)} ORDER BY subscription_id"
            " LIMIT ?")
