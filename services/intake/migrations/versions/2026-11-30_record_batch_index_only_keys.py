"""record_batch: find idempotency keys through their index only

0004's function read ``intake.idempotency_key`` in two joins whose plans PostgreSQL was
free to choose: the update of probable duplicates' replies (a join with the batch) and the
final reply lookup (a join on ``ord = ANY(taken) AND client = .. AND key = ..``). With
thousands of live keys (a day of submissions) both ran as sequential scans of the whole
key table in every batch, so PostgreSQL's CPU per submission grew with the number of live
keys (``pg_stat_user_tables`` during ``bench/bench_intake.py``: two sequential scans per
batch, millions of tuples read in 30 s). Now a probable duplicate's stored reply is
updated by primary key in step 2, where the duplicate is found, and the reply lookup is a
lateral primary-key probe that runs only when some item of the batch took a stored reply.
Same results (``test_intake_record_batch.py``, which also asserts that no statement scans
the key table sequentially).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 06:30:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0004's function with two changes: step 2 updates a keyed probable duplicate's reply by
# primary key (step 3 no longer joins the key table); step 4 looks replies up by a lateral
# primary-key probe, and not at all when no item took a stored reply.
RECORD_BATCH = r"""CREATE OR REPLACE FUNCTION intake.record_batch(
  p_items jsonb, p_now timestamptz, p_expires_at timestamptz, p_window interval)
RETURNS TABLE (o_ord integer, o_recorded boolean, o_duplicate_of text, o_request_hash text,
               o_response jsonb)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  v_n integer := jsonb_array_length(p_items);
  v_taken integer[];
  v_dups uuid[] := array_fill(NULL::uuid, ARRAY[jsonb_array_length(p_items)]);
  v_root_pair text[] := '{}';
  v_root_at timestamptz[] := '{}';
  v_root_id uuid[] := '{}';
  v_dup uuid;
  r record;
BEGIN
  -- 1. Claim the idempotency keys, in (client, key) order so that two batches never
  -- wait on each other in a cycle, with the reply (step 3 adds a duplicate's link). An
  -- expired key is claimed anew; a live one is not returned, and its item takes the stored
  -- reply (step 4). A key claimed by a running
  -- transaction makes this statement wait until that one ends.
  WITH keyed AS (
    SELECT e.ord::integer AS ord, e.j->>'created_by' AS client, e.j->>'idempotency_key' AS key,
           e.j->>'req_hash' AS req_hash, e.j->'response' AS response
    FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(j, ord)
    WHERE e.j->>'idempotency_key' IS NOT NULL
  ), claimed AS (
    INSERT INTO intake.idempotency_key AS k (client, key, request_hash, expires_at,
                                             status_code, response)
    SELECT client, key, req_hash, p_expires_at, 201,
           response || jsonb_build_object('duplicate_of', NULL) FROM keyed
    ORDER BY client COLLATE "C", key COLLATE "C"
    ON CONFLICT (client, key) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, expires_at = EXCLUDED.expires_at,
        created_at = now(), status_code = EXCLUDED.status_code, response = EXCLUDED.response
    WHERE k.expires_at < p_now
    RETURNING k.client, k.key
  )
  SELECT coalesce(array_agg(keyed.ord), '{}') INTO v_taken FROM keyed
  WHERE NOT EXISTS (
    SELECT 1 FROM claimed c WHERE c.client = keyed.client AND c.key = keyed.key);

  -- 2. Probable duplicates: same kind, customer and normalised text (content_hash)
  -- within p_window of an earlier submission (in the table, else earlier in this batch).
  IF p_window > interval '0' AND cardinality(v_taken) < v_n THEN
    -- Serialise submissions of the same customer across concurrent transactions, so that
    -- of two simultaneous equal submissions one is always linked to the other.
    PERFORM pg_advisory_xact_lock(hashtextextended(c, 7)) FROM (
      SELECT DISTINCT e.j->>'customer_key' COLLATE "C" AS c
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(j, ord)
      WHERE NOT (e.ord::integer = ANY(v_taken)) ORDER BY 1) AS customers;
    FOR r IN
      SELECT e.ord::integer AS ord, e.j->>'customer_key' AS customer_key,
             e.j->>'content_hash' AS content_hash, (e.j->>'received_at')::timestamptz AS at,
             (e.j->>'id')::uuid AS id, e.j->>'created_by' AS client,
             e.j->>'idempotency_key' AS key
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(j, ord)
      WHERE NOT (e.ord::integer = ANY(v_taken)) ORDER BY e.ord
    LOOP
      SELECT s.id INTO v_dup FROM intake.submission s
      WHERE s.customer_key = r.customer_key AND s.received_at >= r.at - p_window
        AND s.content_hash = r.content_hash
      ORDER BY s.received_at LIMIT 1;
      IF v_dup IS NULL THEN
        FOR i IN 1 .. cardinality(v_root_id) LOOP
          IF v_root_pair[i] = r.customer_key || '|' || r.content_hash
             AND v_root_at[i] >= r.at - p_window THEN
            v_dup := v_root_id[i];
            EXIT;
          END IF;
        END LOOP;
      END IF;
      IF v_dup IS NULL THEN  -- later items of this batch link to this one
        v_root_pair := v_root_pair || (r.customer_key || '|' || r.content_hash);
        v_root_at := v_root_at || r.at;
        v_root_id := v_root_id || r.id;
      ELSE
        v_dups[r.ord] := v_dup;
        IF r.key IS NOT NULL THEN  -- the reply claimed in step 1 gets the link
          UPDATE intake.idempotency_key AS k
          SET response = k.response || jsonb_build_object('duplicate_of', v_dup)
          WHERE k.client = r.client AND k.key = r.key;
        END IF;
      END IF;
    END LOOP;
  END IF;

  -- 3. The writes, in array order (outbox seq and audit id follow arrival order).
  IF cardinality(v_taken) < v_n THEN
    WITH b AS MATERIALIZED (
      SELECT x.*, v_dups[x.ord::integer] AS dup FROM ROWS FROM (jsonb_to_recordset(p_items) AS (
        id uuid, kind text, reference text, channel text, received_at timestamptz,
        customer_key text, description text, subject text, product text, branch_code text,
        region text, occurred_at timestamptz, amount_minor bigint, currency text,
        language text, external_ref text, attachments jsonb, content_hash text,
        created_by text, actor_roles text, correlation_id text, key_id text,
        ciphertext text, event_id uuid, topic text, event_key text, event_type text,
        payload jsonb, headers jsonb, idempotency_key text, response jsonb))
        WITH ORDINALITY AS x(id, kind, reference, channel, received_at, customer_key,
          description, subject, product, branch_code, region, occurred_at, amount_minor,
          currency, language, external_ref, attachments, content_hash, created_by,
          actor_roles, correlation_id, key_id, ciphertext, event_id, topic, event_key,
          event_type, payload, headers, idempotency_key, response, ord)
      WHERE NOT (x.ord::integer = ANY(v_taken))
      ORDER BY x.ord
    ), submissions AS (
      INSERT INTO intake.submission (id, kind, reference, channel, received_at,
        customer_key, description, subject, product, branch_code, region, occurred_at,
        amount_minor, currency, language, external_ref, attachments, content_hash,
        duplicate_of, created_by)
      SELECT id, kind, reference, channel, received_at, customer_key, description, subject,
        product, branch_code, region, occurred_at, amount_minor, currency, language,
        external_ref, attachments, content_hash, dup, created_by FROM b
    ), vault AS (
      INSERT INTO intake.vault (submission_id, key_id, ciphertext)
      SELECT id, key_id, decode(ciphertext, 'base64') FROM b
    ), events AS (
      INSERT INTO intake.outbox (id, topic, key, type, payload, headers)
      SELECT event_id, topic, event_key, event_type, payload, headers FROM b
    )
    INSERT INTO intake.audit_log (actor, actor_roles, action, subject_type, subject_id,
      details, correlation_id)
    SELECT created_by, actor_roles, kind || '.create', kind, id::text,
      jsonb_build_object('channel', channel, 'reference', reference), correlation_id
    FROM b;
  END IF;

  -- 4. One row per item: recorded, or the stored reply of its key (read after step 1).
  IF cardinality(v_taken) = 0 THEN
    RETURN QUERY
      SELECT g, true, v_dups[g]::text, NULL::text, NULL::jsonb
      FROM generate_series(1, v_n) AS g ORDER BY g;
  ELSE
    -- A lateral lookup per taken item (LIMIT keeps it from being flattened into a join
    -- that PostgreSQL may run as a sequential scan of every key).
    RETURN QUERY
      SELECT e.ord::integer, NOT (e.ord::integer = ANY(v_taken)), v_dups[e.ord::integer]::text,
             k.request_hash, k.response
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(j, ord)
      LEFT JOIN LATERAL (
        SELECT s.request_hash, s.response FROM intake.idempotency_key s
        WHERE e.ord::integer = ANY(v_taken)
          AND s.client = e.j->>'created_by' AND s.key = e.j->>'idempotency_key'
        LIMIT 1) AS k ON true
      ORDER BY e.ord;
  END IF;
END
$fn$
"""


def upgrade() -> None:
    op.execute(RECORD_BATCH)


def downgrade() -> None:
    # 0004's function, as its upgrade creates it.
    path = Path(__file__).with_name("2026-11-30_record_batch_reply_at_claim.py")
    spec = importlib.util.spec_from_file_location("_intake_0004", path)
    assert spec is not None
    assert spec.loader is not None
    rev0004 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rev0004)
    rev0004.upgrade()
