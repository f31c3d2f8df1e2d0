-- Notifications: one row per event and recipient organisation, in the order they happened. Webhook deliveries
-- and the live event stream both read from here (an outbox written in the transaction that made the event).

CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id),
    kind            TEXT NOT NULL,
    shipment_id     INTEGER REFERENCES shipments (id),
    subject         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE INDEX notifications_by_organisation ON notifications (organisation_id, id);
