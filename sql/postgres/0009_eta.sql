-- The latest arrival estimate of each shipment, refreshed by a job; at_risk remembers the last verdict so an
-- "at risk" notification goes out when a shipment becomes at risk, not on every refresh.

CREATE TABLE shipment_etas (
    shipment_id BIGINT PRIMARY KEY REFERENCES shipments (id),
    computed_at TIMESTAMPTZ NOT NULL,
    at_risk     BOOLEAN NOT NULL,
    estimate    TEXT NOT NULL  -- JSON of the estimate as the API shows it
);
