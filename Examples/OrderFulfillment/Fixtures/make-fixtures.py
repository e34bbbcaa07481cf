#!/usr/bin/env python3
"""Writes the example's recorded snapshot (Fixtures/recorded-orders.jsonl) and the demo's scripted
stream (Demo/stream.jsonl), both in Sluice's snapshot format. Run it again after changing it."""
import json, os
from datetime import datetime, timezone

here = os.path.dirname(os.path.abspath(__file__))
PARTITIONS = 3

def ms(text):
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() * 1000)

def envelope(event_id, event_type, version, at, data, causation, correlation, subject):
    return {"event_id": event_id, "event_type": event_type, "schema_version": version, "occurred_at": at,
            "producer": "example-shop", "correlation_id": correlation, "causation_id": causation,
            "subject": subject, "data": data}

class Stream:
    def __init__(self):
        self.records = []
        self.offsets = {}

    def add(self, topic, key, at, value, headers=()):
        partition = sum(key.encode()) % PARTITIONS
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = offset + 1
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        self.records.append({"topic": topic, "partition": partition, "offset": offset, "timestamp": ms(at),
                             "key": key, "headers": [list(h) for h in headers], "value": text})

    def write(self, path):
        with open(path, "w") as out:
            for record in self.records:
                out.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")

def order(stream, n, at, items, total):
    oid = f"ord_{n:08d}"
    event = f"evt-order-{n}"
    stream.add("orders.events", oid, at, envelope(event, "orders.order_placed", 1, at, {
        "order_id": oid, "customer_id": f"cus_{n:08d}", "placed_at": at, "currency": "EUR", "total_minor": total,
        "line_items": [{"sku": sku, "quantity": q, "unit_price_minor": p} for sku, q, p in items]},
        f"cmd-checkout-{n}", f"corr-{n}", f"order:{oid}"), [("traceparent", f"00-{n:032x}-{n:016x}-01")])
    return oid, event

def reserved(stream, n, oid, cause, at, items):
    stream.add("inventory.events", oid, at, envelope(f"evt-stock-{n}", "inventory.stock_reserved", 1, at, {
        "reservation_id": f"res_{n:08d}", "order_id": oid, "warehouse_id": "ams-1", "reserved_at": at,
        "expires_at": "2026-11-29T00:00:00Z", "items": [{"sku": sku, "quantity": q} for sku, q, _ in items]},
        cause, f"corr-{n}", f"order:{oid}"))

def payment(stream, n, oid, cause, at, amount, version, event_id=None, extra=None):
    data = {"payment_id": f"pay_{n:08d}", "order_id": oid, "amount_minor": amount, "currency": "EUR", "authorized_at": at,
            "card_last4": "4242"}
    if version == 2:
        data["capture_mode"] = "manual"
        data["risk_score"] = 12.5
    data.update(extra or {})
    stream.add("billing.events", oid, at, envelope(event_id or f"evt-pay-{n}", "billing.payment_authorized", version, at, data,
                                                  cause, f"corr-{n}", f"payment:pay_{n:08d}"))

# The recorded snapshot: four clean orders, v1 and v2 payments, causes before effects.
recorded = Stream()
for n, (items, version) in enumerate([
    ([("SKU-BOOK-1", 1, 1999)], 1),
    ([("SKU-LAMP-2", 2, 4500), ("SKU-BULB-9", 4, 250)], 2),
    ([("SKU-MUG-3", 6, 800)], 1),
    ([("SKU-DESK-4", 1, 25900)], 2),
], start=1):
    total = sum(q * p for _, q, p in items)
    minute = 10 * n
    oid, event = order(recorded, n, f"2026-11-20T08:{minute:02d}:00Z", items, total)
    reserved(recorded, n, oid, event, f"2026-11-20T08:{minute + 1:02d}:00Z", items)
    payment(recorded, n, oid, event, f"2026-11-20T08:{minute + 2:02d}:00Z", total, version)
recorded.write(os.path.join(here, "recorded-orders.jsonl"))

# The demo's scripted stream: 09:00-09:19 normal traffic; 09:20-09:39 the trouble.
demo = Stream()
for n in range(1, 4):
    items = [("SKU-BOOK-1", n, 1999)]
    oid, event = order(demo, 100 + n, f"2026-11-22T09:{n:02d}:00Z", items, 1999 * n)
    reserved(demo, 100 + n, oid, event, f"2026-11-22T09:{n + 4:02d}:00Z", items)
    payment(demo, 100 + n, oid, event, f"2026-11-22T09:{n + 8:02d}:00Z", 1999 * n, 1 if n % 2 else 2)
# A duplicate: the same payment event delivered twice (a producer retry), byte for byte.
first = next(r for r in demo.records if '"evt-pay-102"' in r["value"])
demo.add("billing.events", "ord_00000102", "2026-11-22T09:21:00Z", first["value"])
# A malformed record: not JSON at all.
demo.add("billing.events", "ord_00000103", "2026-11-22T09:22:00Z", "{this is not json")
# A schema violation: a negative amount.
payment(demo, 104, "ord_00000101", "evt-order-101", "2026-11-22T09:23:00Z", -500, 2)
# An unknown schema version: v3 of the payment event, not registered yet.
payment(demo, 105, "ord_00000101", "evt-order-101", "2026-11-22T09:24:00Z", 1999, 3)
# A handler failure: a payment for an order this service never saw.
payment(demo, 106, "ord_00000999", "evt-order-999", "2026-11-22T09:25:00Z", 1000, 2)
demo.write(os.path.join(here, "..", "Demo", "stream.jsonl"))
