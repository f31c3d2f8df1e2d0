-- Notifications: one row per event and recipient organisation, in the order they happened. Webhook deliveries
-- and the live event stream both read from here (an outbox written in the transaction that made the event).

CREATE TABLE notifications (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    kind            TEXT NOT NULL,
    shipment_id     BIGINT REFERENCES shipments (id),
    subject         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE INDEX notifications_by_organisation ON notifications (organisation_id, id);
