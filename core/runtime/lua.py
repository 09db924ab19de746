"""Every Lua script docgraph runs, in one place.

Each script is one atomic step of a job's life: submit, start, the hand-off
(ack + record + enqueue successors), retry scheduling, dead-lettering, retry
promotion, replay, cancel and retention.  Atomicity is what makes the
guarantees hold: there is no moment where a crash leaves a job acknowledged
but not handed on, or handed on twice.

Conventions: ``KEYS[1]`` is the job record when there is one; ``ARGV[1]`` is
the partition's key tag (``{prefix:pN}``), from which the script derives the
partition's other key names (all in the same cluster slot); times are
milliseconds since the epoch, passed in by the caller.

A script's arguments are built by its typed call in
:mod:`~docgraph.core.runtime.calls` (whose docstring is the script's layout):
fixed positions only; every variable-length part is one JSON argument decoded
here with ``cjson.decode``.
"""

from __future__ import annotations

# Shared helpers, prepended to every script.
_LIB = r"""
local function idx(tag, state) return tag .. ':state:' .. state end
local function stream(tag, stage, lane) return tag .. ':stream:' .. stage .. ':' .. lane end

-- Move a job between state indexes; a job is in exactly one index.
local function set_state(job, tag, id, state, now)
  local old = redis.call('HGET', job, 'state')
  if (old == 'failed' or old == 'dead') and (state == 'running' or state == 'retrying') then
    old = state  -- a failure stays visible until the dead stage is replayed
  end
  if old == state then
    redis.call('HSET', job, 'updated', now)
    return
  end
  if old then redis.call('ZREM', idx(tag, old), id) end
  redis.call('ZADD', idx(tag, state), now, id)
  redis.call('HSET', job, 'state', state, 'updated', now)
end

-- The state of an unfinished job after one of its stages finished: 'running'
-- while any stage runs or waits in a stream, else 'retrying' while one waits for
-- its retry.  A parallel branch that started after its sibling's retry was
-- recorded must not leave the job 'running' once it is done.
local function in_flight_state(job, stages)
  local retrying = false
  for _, s in ipairs(stages) do
    local st = redis.call('HGET', job, s .. ':status')
    if st == 'running' or st == 'queued' then return 'running' end
    if st == 'retrying' then retrying = true end
  end
  return retrying and 'retrying' or 'running'
end

-- Remove a job's scheduled work (retries, delayed roots) from the delayed set.
local function unschedule(job, tag)
  local fields = redis.call('HGETALL', job)
  for i = 1, #fields, 2 do
    if string.sub(fields[i], -8) == ':delayed' then
      redis.call('ZREM', tag .. ':delayed', fields[i + 1])
    end
  end
end

local function remove_job(tag, id, state)
  local job = tag .. ':job:' .. id
  local idem = redis.call('HGET', job, 'idem')
  if idem then redis.call('HDEL', tag .. ':idem', idem) end
  local doc = redis.call('HGET', job, 'latest')  -- latest-wins: the document's newest job
  if doc and redis.call('HGET', tag .. ':latest', doc) == id then redis.call('HDEL', tag .. ':latest', doc) end
  if state ~= 'completed' then unschedule(job, tag) end  -- only unfinished work has any
  redis.call('DEL', job)
  redis.call('ZREM', idx(tag, state), id)
end

-- Drop the oldest finished jobs beyond max_count and those older than max_age.
-- Bounded work per call; the maintenance sweep catches up when idle.
local function trim(tag, state, now, max_age, max_count)
  local key = idx(tag, state)
  local old = redis.call('ZRANGEBYSCORE', key, '-inf', now - max_age, 'LIMIT', 0, 100)
  for _, id in ipairs(old) do remove_job(tag, id, state) end
  local excess = redis.call('ZCARD', key) - max_count
  if excess > 0 then
    if excess > 100 then excess = 100 end
    for _, id in ipairs(redis.call('ZRANGE', key, 0, excess - 1)) do
      remove_job(tag, id, state)
    end
  end
end

-- Acknowledge and delete a handled entry: the stream keeps only unread and
-- pending entries, so memory stays flat and nothing pending is ever trimmed.
-- Returns false when the entry was already acknowledged (someone else won).
local function ack(src, group, id)
  if id == '' then return true end
  if redis.call('XACK', src, group, id) == 0 then return false end
  redis.call('XDEL', src, id)
  return true
end

local function finished(state)
  return state == 'completed' or state == 'failed' or state == 'dead' or state == 'cancelled'
end

-- A job whose work must stop: deleted, cancelled or already completed.  A
-- failed/dead job is not gone: its other branches go on, so a replay of the
-- dead stage can still complete it.
local function gone(state)
  return (not state) or state == 'cancelled' or state == 'completed' or state == 'deleted'
end

-- Append one lifecycle event (docs/events.md) to the partition's events stream.
-- Called last in a script, after the change it reports: a step that fails
-- earlier leaves no event.  cap: approximate MAXLEN (0: events are off);
-- extra: {field, value, ...} (false or '' values left out); doc: {uri, sha256,
-- name, traceparent} when the caller has them (else read from the record).
local function emit(tag, job, cap, now, kind, id, stage, extra, doc)
  if cap <= 0 then return end
  local seq = redis.call('HINCRBY', job, 'seq', 1)
  local d = doc or redis.call('HMGET', job, 'doc_uri', 'doc_sha256', 'doc_name', 'traceparent')
  local f = {'type', kind, 'job_id', id, 'seq', seq, 'time', now}
  local function add(k, v)
    if v and v ~= '' then f[#f + 1] = k; f[#f + 1] = v end
  end
  add('stage', stage)
  if extra then
    for i = 1, #extra, 2 do add(extra[i], extra[i + 1]) end
  end
  add('uri', d[1]); add('sha256', d[2]); add('name', d[3]); add('traceparent', d[4])
  redis.call('XADD', tag .. ':events', 'MAXLEN', '~', cap, '*', unpack(f))
end

-- An error's first line, at most 200 bytes: what an event carries.
local function summary(err)
  return string.sub(string.match(err or '', '^[^\n]*') or '', 1, 200)
end

-- Cancel an unfinished job: its scheduled retries go, its queued stream entries
-- are dropped when read; extra: more fields for the job.cancelled event.
local function cancel_job(job, tag, id, state, now, cap, extra)
  unschedule(job, tag)
  redis.call('HSET', job, 'finished', now)
  set_state(job, tag, id, 'cancelled', now)
  local f = {'previous', state}
  for _, v in ipairs(extra or {}) do f[#f + 1] = v end
  emit(tag, job, cap, now, 'job.cancelled', id, false, f)
end

-- The graph summary of a completed job: counts from the last stage output that has them (ingest's).
local function graph_counts(job, stages)
  for i = #stages, 1, -1 do
    local o = redis.call('HGET', job, stages[i] .. ':output')
    if o and string.find(o, '"entities":', 1, true) then
      local ok, out = pcall(cjson.decode, o)
      if ok and type(out) == 'table' then
        local function n(v) return type(v) == 'number' and tostring(v) or false end
        return {'entities', n(out.entities), 'relations', n(out.relations or out.contributed_edges),
          'mentions', n(out.mentions), 'chunks', n(out.chunks)}
      end
    end
  end
  return nil
end
"""

SUBMIT = (
    _LIB
    + r"""
-- calls.Submit: KEYS[1] job
-- ARGV: tag, id, now, traceparent, lane, idem, meta_json, stages_json, roots_json,
--       events_cap, doc_uri, doc_sha256, doc_name, not_before, callback,
--       latest (the document's name or URI under latest-wins; '' off)
-- (JSON arguments are decoded before the first write: a script that fails
-- half-way keeps its writes)
-- not_before later than now: the roots wait in the delayed set (as a retry
-- does) and PROMOTE moves them to their streams when due; CANCEL removes them.
local job, tag, id, now = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local not_before = tonumber(ARGV[14])
local tp, lane, idem, meta = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local stages, roots = cjson.decode(ARGV[8]), cjson.decode(ARGV[9])
if idem ~= '' then
  local existing = redis.call('HGET', tag .. ':idem', idem)
  if existing and redis.call('EXISTS', tag .. ':job:' .. existing) == 1 then
    return {0, existing}
  end
end
local prior = redis.call('HGET', job, 'state')
if prior then
  if prior ~= 'deleted' then return {0, id} end
  redis.call('DEL', job)  -- a tombstone: the id is free again
end
-- the whole record in one HSET (a later field of the same name wins)
local f = {'id', id, 'created', now, 'traceparent', tp, 'priority', lane, 'state', 'queued', 'updated', now}
local function field(k, v) f[#f + 1] = k; f[#f + 1] = v end
if meta ~= '{}' then field('meta', meta) end
if ARGV[11] ~= '' then field('doc_uri', ARGV[11]) end
if ARGV[12] ~= '' then field('doc_sha256', ARGV[12]) end
if ARGV[13] ~= '' then field('doc_name', ARGV[13]) end
if ARGV[15] ~= '' then field('callback', ARGV[15]) end
if ARGV[16] ~= '' then field('latest', ARGV[16]) end
if idem ~= '' then
  field('idem', idem)
  redis.call('HSET', tag .. ':idem', idem, id)
end
for _, s in ipairs(stages) do field(s .. ':status', 'pending') end
for _, r in ipairs(roots) do
  local root, payload = r[1], r[2]
  if not_before > now then
    local member = cjson.encode({job = id, stage = root, stream = stream(tag, root, lane),
      payload = payload, traceparent = tp})
    redis.call('ZADD', tag .. ':delayed', not_before, member)
    field(root .. ':status', 'scheduled')
    field(root .. ':due', not_before)
    field(root .. ':delayed', member)
  else
    redis.call('XADD', stream(tag, root, lane), '*', 'payload', payload, 'traceparent', tp)
    field(root .. ':status', 'queued')
  end
  field(root .. ':enq', 1)
end
local cap = tonumber(ARGV[10])
if cap > 0 then field('seq', 1) end  -- job.submitted is the new record's first event
redis.call('HSET', job, unpack(f))
redis.call('ZADD', idx(tag, 'queued'), now, id)  -- what set_state does for a new job
if cap > 0 then  -- job.submitted as emit() writes it, from what is at hand (no HINCRBY, no closure)
  local e = {'type', 'job.submitted', 'job_id', id, 'seq', 1, 'time', now, 'priority', lane}
  if not_before > now then e[#e + 1] = 'not_before'; e[#e + 1] = not_before end
  if ARGV[11] ~= '' then e[#e + 1] = 'uri'; e[#e + 1] = ARGV[11] end
  if ARGV[12] ~= '' then e[#e + 1] = 'sha256'; e[#e + 1] = ARGV[12] end
  if ARGV[13] ~= '' then e[#e + 1] = 'name'; e[#e + 1] = ARGV[13] end
  if tp ~= '' then e[#e + 1] = 'traceparent'; e[#e + 1] = tp end
  redis.call('XADD', tag .. ':events', 'MAXLEN', '~', cap, '*', unpack(e))
end
if ARGV[16] ~= '' then  -- latest wins: an older job of this document that has not started is cancelled
  local older = redis.call('HGET', tag .. ':latest', ARGV[16])
  if older and older ~= id then
    local ojob = tag .. ':job:' .. older
    if redis.call('HGET', ojob, 'state') == 'queued' and not redis.call('HGET', ojob, 'started') then
      redis.call('HSET', ojob, 'superseded_by', id)
      cancel_job(ojob, tag, older, 'queued', now, cap, {'superseded_by', id})
    end
  end
  redis.call('HSET', tag .. ':latest', ARGV[16], id)
end
return {1, id}
"""
)

START = (
    _LIB
    + r"""
-- calls.Start: KEYS[1] job
-- ARGV: tag, id, stage, now, attempt, lane, traceparent, adopt, stages_json,
--       events_cap, doc_uri, doc_sha256, doc_name (the last three read only when adopting)
-- Returns the job state, false when the job is gone, or 'done' (nothing written) when
-- this stage was already handed off: a late start.  An event published
-- straight onto a root stream by another system (no record yet) is adopted
-- when ``adopt`` is '1': its record is created here.
local job, tag, id, stage, now = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local cap = tonumber(ARGV[10])
local adopted = false
local state = redis.call('HGET', job, 'state')
if not state then
  if ARGV[8] ~= '1' then return false end
  redis.call('HSET', job, 'id', id, 'created', now, 'traceparent', ARGV[7], 'priority', ARGV[6])
  for i, k in ipairs({'doc_uri', 'doc_sha256', 'doc_name'}) do
    if ARGV[10 + i] ~= '' then redis.call('HSET', job, k, ARGV[10 + i]) end
  end
  for _, s in ipairs(cjson.decode(ARGV[9])) do redis.call('HSET', job, s .. ':status', 'pending') end
  redis.call('HSET', job, stage .. ':enq', 1)
  set_state(job, tag, id, 'queued', now)
  state = 'queued'
  adopted = true
end
if gone(state) then return state end
-- A start that arrives after this stage was handed off (its worker was cut off from
-- Redis while another reclaimed and finished the entry) must change nothing: a 'done'
-- stage put back to 'running' would hold its join, and the job, forever.
if redis.call('HGET', job, stage .. ':status') == 'done' then return 'done' end
redis.call('HSET', job, stage .. ':status', 'running', stage .. ':started', now,
  stage .. ':attempts', ARGV[5])
redis.call('HINCRBY', job, stage .. ':runs', 1)
if not redis.call('HGET', job, 'started') then redis.call('HSET', job, 'started', now) end
set_state(job, tag, id, 'running', now)
if adopted then emit(tag, job, cap, now, 'job.submitted', id, false, {'priority', ARGV[6]}) end
emit(tag, job, cap, now, 'stage.started', id, stage, {'attempt', ARGV[5]})
return state
"""
)

COMPLETE = (
    _LIB
    + r"""
-- The hand-off.  calls.Complete: KEYS[1] job, KEYS[2] source stream
-- ARGV: tag, group, entry, id, stage, now, output_json, traceparent,
--       completed_max_age, completed_max_count, lane,
--       route_json {stages, skip, cands = [{stage, preds}...]}, prefixes_json [prefix per cand],
--       events_cap
-- A payload prefix is the successor's envelope JSON without its closing brace;
-- the script appends the recorded outputs of every finished stage, so a join
-- sees both branches' outputs.  A branch into a join records its traceparent
-- (<stage>:tp); the join's event carries the other branches' as ``links``, so
-- its span links to every branch, not only the parent that enqueued it.
local job, src = KEYS[1], KEYS[2]
local tag, group, entry, id, stage = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, output, tp = tonumber(ARGV[6]), ARGV[7], ARGV[8]
local max_age, max_count, lane = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]
local route, prefixes = cjson.decode(ARGV[12]), cjson.decode(ARGV[13])
local cap = tonumber(ARGV[14])
if not ack(src, group, entry) then return 'stale' end
local state = redis.call('HGET', job, 'state')
if gone(state) then return 'gone' end
redis.call('HSET', job, stage .. ':status', 'done', stage .. ':finished', now)
if output ~= '' then redis.call('HSET', job, stage .. ':output', output) end
redis.call('HINCRBY', job, stage .. ':completions', 1)
local stages = route.stages
for _, s in ipairs(route.skip) do redis.call('HSET', job, s .. ':status', 'skipped') end
local function satisfied(s)
  local st = redis.call('HGET', job, s .. ':status')
  return st == 'done' or st == 'skipped'
end
for c, candidate in ipairs(route.cands) do
  local cand, preds, prefix = candidate.stage, candidate.preds, prefixes[c]
  local ready = true
  for _, pred in ipairs(preds) do
    if not satisfied(pred) then ready = false end
  end
  local links = {}
  if #preds > 1 and tp ~= '' then
    redis.call('HSET', job, stage .. ':tp', tp)
    for _, pred in ipairs(preds) do
      local other = pred ~= stage and redis.call('HGET', job, pred .. ':tp')
      if other then links[#links + 1] = other end
    end
  end
  if ready and redis.call('HSETNX', job, cand .. ':enq', 1) == 1 then
    local outs = {}
    for _, s in ipairs(stages) do
      local o = redis.call('HGET', job, s .. ':output')
      if o then outs[#outs + 1] = cjson.encode(s) .. ':' .. o end
    end
    local payload = prefix .. ',"outputs":{' .. table.concat(outs, ',') .. '}}'
    local sid = stream(tag, cand, lane)
    if #links > 0 then
      redis.call('XADD', sid, '*', 'payload', payload, 'traceparent', tp, 'links', table.concat(links, ' '))
    else
      redis.call('XADD', sid, '*', 'payload', payload, 'traceparent', tp)
    end
    redis.call('HSET', job, cand .. ':status', 'queued')
  end
end
for _, s in ipairs(stages) do
  if not satisfied(s) then
    set_state(job, tag, id, in_flight_state(job, stages), now)
    if cap > 0 then
      emit(tag, job, cap, now, 'stage.completed', id, stage, {'attempt', redis.call('HGET', job, stage .. ':attempts')})
    end
    return 'ok'
  end
end
-- done: drop what only mattered while the job ran, to keep retained records small
for _, s in ipairs(stages) do redis.call('HDEL', job, s .. ':enq', s .. ':progress', s .. ':message', s .. ':tp') end
redis.call('HSET', job, 'finished', now)
set_state(job, tag, id, 'completed', now)
if cap > 0 then
  emit(tag, job, cap, now, 'stage.completed', id, stage, {'attempt', redis.call('HGET', job, stage .. ':attempts')})
  emit(tag, job, cap, now, 'job.completed', id, false, graph_counts(job, stages))
end
trim(tag, 'completed', now, max_age, max_count)
return 'completed'
"""
)

RETRY = (
    _LIB
    + r"""
-- calls.Retry: KEYS[1] job, KEYS[2] source stream
-- ARGV: tag, group, entry, id, stage, now, due, member, error, attempt, events_cap
local job, src = KEYS[1], KEYS[2]
local tag, group, entry, id, stage = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, due, member = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
if not ack(src, group, entry) then return 'stale' end
local state = redis.call('HGET', job, 'state')
if gone(state) then return 'gone' end
redis.call('ZADD', tag .. ':delayed', due, member)
redis.call('HSET', job, stage .. ':status', 'retrying', stage .. ':error', ARGV[9],
  stage .. ':attempts', ARGV[10], stage .. ':due', due, stage .. ':delayed', member,
  'error', ARGV[9])
set_state(job, tag, id, 'retrying', now)
emit(tag, job, tonumber(ARGV[11]), now, 'stage.retrying', id, stage,
  {'attempt', ARGV[10], 'error', summary(ARGV[9]), 'due', due})
return 'ok'
"""
)

DEAD = (
    _LIB
    + r"""
-- Dead-letter an entry.  calls.Dead: KEYS[1] job (may be absent), KEYS[2] source stream,
-- KEYS[3] dlq   ARGV: tag, group, entry, id, stage, now, final_state, error, max_age, max_count,
--       dlq_maxlen, fields_json [field, value, ...], events_cap
local job, src, dlq = KEYS[1], KEYS[2], KEYS[3]
local tag, group, entry, id, stage = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, final = tonumber(ARGV[6]), ARGV[7]
local fields = cjson.decode(ARGV[12])
if not ack(src, group, entry) then return 'stale' end
local maxlen = tonumber(ARGV[11])
if maxlen > 0 then
  redis.call('XADD', dlq, 'MAXLEN', '~', maxlen, '*', unpack(fields))
else
  redis.call('XADD', dlq, '*', unpack(fields))
end
if id == '' then return 'ok' end
local state = redis.call('HGET', job, 'state')
if not state or state == 'cancelled' then return 'gone' end
redis.call('HSET', job, stage .. ':status', final, stage .. ':error', ARGV[8],
  stage .. ':finished', now, 'error', ARGV[8], 'finished', now)
set_state(job, tag, id, final, now)
local cap = tonumber(ARGV[13])
if cap > 0 then
  emit(tag, job, cap, now, 'job.' .. final, id, stage,
    {'attempt', redis.call('HGET', job, stage .. ':attempts'), 'error', summary(ARGV[8])})
end
trim(tag, final, now, tonumber(ARGV[9]), tonumber(ARGV[10]))
return 'ok'
"""
)

RELEASE = (
    _LIB
    + r"""
-- Hand an in-flight entry back at shutdown: ack it and re-add it, so another
-- consumer can take it now instead of after the visibility timeout.
-- calls.Release: KEYS[1] job, KEYS[2] source stream   ARGV: group, entry, stage, payload, traceparent
local job, src = KEYS[1], KEYS[2]
if redis.call('XACK', src, ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', src, ARGV[2])
redis.call('XADD', src, '*', 'payload', ARGV[4], 'traceparent', ARGV[5])
if redis.call('EXISTS', job) == 1 then redis.call('HSET', job, ARGV[3] .. ':status', 'queued') end
return 1
"""
)

DROP = (
    _LIB
    + r"""
-- Ack and delete an entry whose job is gone or finished.  calls.Drop: KEYS[1] source stream
-- ARGV: group, entry
return ack(KEYS[1], ARGV[1], ARGV[2]) and 1 or 0
"""
)

PROMOTE = (
    _LIB
    + r"""
-- Move due retries back to their streams.  calls.Promote: KEYS[1] delayed   ARGV: tag, now, limit
-- A member is JSON {job, stage, stream, payload, traceparent}.
local tag, now = ARGV[1], tonumber(ARGV[2])
local key = tag .. ':delayed'
local due = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  local m = cjson.decode(member)
  redis.call('ZREM', key, member)
  local job = tag .. ':job:' .. m.job
  local state = redis.call('HGET', job, 'state')
  if not gone(state) then
    redis.call('XADD', m.stream, '*', 'payload', m.payload, 'traceparent', m.traceparent)
    redis.call('HSET', job, m.stage .. ':status', 'queued')
    redis.call('HDEL', job, m.stage .. ':delayed')
  end
end
return #due
"""
)

REPLAY = (
    _LIB
    + r"""
-- Replay a dead letter under the same job id.  calls.Replay: KEYS[1] job, KEYS[2] dlq,
-- KEYS[3] target stream   ARGV: tag, dlq_entry, id, stage, now, payload, traceparent,
--       done_json [stage...], stages_json [stage...], events_cap
local job, dlq, target = KEYS[1], KEYS[2], KEYS[3]
local tag, entry, id, stage, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local done, stages = cjson.decode(ARGV[8]), cjson.decode(ARGV[9])
if redis.call('XDEL', dlq, entry) == 0 then return 0 end
if redis.call('EXISTS', job) == 0 then
  -- The record expired: rebuild it from what the event says happened.
  redis.call('HSET', job, 'id', id, 'created', now, 'traceparent', ARGV[7], 'priority', 'normal')
  for _, s in ipairs(stages) do redis.call('HSET', job, s .. ':status', 'pending') end
  for _, s in ipairs(done) do
    redis.call('HSET', job, s .. ':status', 'done', s .. ':enq', 1)
  end
  local ok, p = pcall(cjson.decode, ARGV[6])
  local doc = ok and type(p) == 'table' and p.document
  if type(doc) == 'table' then
    for k, v in pairs({doc_uri = doc.uri, doc_sha256 = doc.sha256, doc_name = doc.name}) do
      if type(v) == 'string' and v ~= '' then redis.call('HSET', job, k, v) end
    end
  end
end
redis.call('XADD', target, '*', 'payload', ARGV[6], 'traceparent', ARGV[7])
redis.call('HSET', job, stage .. ':status', 'queued', stage .. ':enq', 1, stage .. ':attempts', 0)
redis.call('HDEL', job, 'finished')
set_state(job, tag, id, 'queued', now)
emit(tag, job, tonumber(ARGV[10]), now, 'job.replayed', id, stage, false)
return 1
"""
)

CANCEL = (
    _LIB
    + r"""
-- calls.Cancel: KEYS[1] job   ARGV: tag, id, now, remove ('1' deletes the record), tombstone_ms,
--   events_cap
-- Returns the previous state, or false if there is no such job.  Queued
-- stream entries are dropped when read; delayed retries are removed now.
local job, tag, id, now = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local state = redis.call('HGET', job, 'state')
if not state or state == 'deleted' then return false end
if ARGV[4] == '1' then
  emit(tag, job, tonumber(ARGV[6]), now, 'job.deleted', id, false, {'previous', state})  -- before the record goes
  remove_job(tag, id, state)
  -- a short-lived tombstone: entries still queued for this job are dropped,
  -- not adopted as new external submissions
  redis.call('HSET', job, 'state', 'deleted')
  redis.call('PEXPIRE', job, tonumber(ARGV[5]))
  return state
end
if finished(state) then return state end
cancel_job(job, tag, id, state, now, tonumber(ARGV[6]))
return state
"""
)

SWEEP = (
    _LIB
    + r"""
-- Retention while idle.  calls.Sweep: KEYS[1] completed index
-- ARGV: tag, now, completed_age, completed_count, failed_age, failed_count, events_age (0: keep)
local tag, now = ARGV[1], tonumber(ARGV[2])
local events_age = tonumber(ARGV[7])
if events_age > 0 then
  redis.call('XTRIM', tag .. ':events', 'MINID', tostring(now - events_age))  -- exact: idle-time work
end
trim(tag, 'completed', now, tonumber(ARGV[3]), tonumber(ARGV[4]))
for _, s in ipairs({'failed', 'dead', 'cancelled'}) do
  trim(tag, s, now, tonumber(ARGV[5]), tonumber(ARGV[6]))
end
return 1
"""
)

# Webhook deliveries (core/runtime/notify.py).  A delivery is a JSON member of the
# partition's notify:due set, scored by when it is next due; taking it moves the
# score past its timeout, so a notify worker that dies mid-delivery gives it back.
NOTIFY_FANOUT = r"""
-- calls.NotifyFanout: KEYS[1] events stream, KEYS[2] notify:due
-- ARGV: group, now, deliveries_json (["member", ...]), entries_json (["entry id", ...])
-- The events' deliveries are due now; the events are acknowledged in the same step.
local deliveries, entries = cjson.decode(ARGV[3]), cjson.decode(ARGV[4])
for _, m in ipairs(deliveries) do redis.call('ZADD', KEYS[2], 'NX', ARGV[2], m) end
for _, e in ipairs(entries) do redis.call('XACK', KEYS[1], ARGV[1], e) end
return #deliveries
"""

NOTIFY_TAKE = r"""
-- calls.NotifyTake: KEYS[1] notify:due   ARGV: now, count, lease_ms
-- Returns up to count due deliveries, each now leased for lease_ms.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[3])
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', until_ms, m) end
return due
"""

NOTIFY_SETTLE = r"""
-- calls.NotifySettle: KEYS[1] notify:due, KEYS[2] dlq:notify
-- ARGV: member, outcome ('done' | 'retry' | 'dead'), due (ms), next_member, dlq_fields_json
--   ({field: value}), dlq_max_len
-- Returns 0 if the delivery is no longer there (settled by another worker), else 1.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local fields = cjson.decode(ARGV[5])
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[2] == 'retry' then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
elseif ARGV[2] == 'dead' then
  local f = {}
  for k, v in pairs(fields) do f[#f + 1] = k; f[#f + 1] = v end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', unpack(f))
end
return 1
"""

NOTIFY_REPLAY = r"""
-- calls.NotifyReplay: KEYS[1] dlq:notify, KEYS[2] notify:due   ARGV: entry, member, now
-- Returns 0 if the letter is gone (replayed or purged already).
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""

# Cluster-wide stage limits (core/runtime/limits.py): one slot per stage.
LIMIT_TAKE = r"""
-- calls.LimitTake: KEYS[1] rate (theoretical arrival time, ms), KEYS[2] in-flight permits
-- ARGV: want, interval_ms (1000 / max_per_second; 0: no rate), burst, max_in_flight (0: none),
--       holder (permit name prefix), lease_ms
-- The server's clock (TIME), so workers' clocks do not matter.  GCRA: a start is allowed
-- while the arrival time stays within burst intervals of now.
-- Returns {granted, wait_ms, permit, permit, ...}: wait_ms > 0 when nothing was granted.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local want, interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local max_in_flight, lease = tonumber(ARGV[4]), tonumber(ARGV[6])
local n, wait = want, 0
if max_in_flight > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)  -- permits of dead workers expire
  local free = max_in_flight - redis.call('ZCARD', KEYS[2])
  if free < n then n = math.max(free, 0) end
  if n == 0 then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    wait = first[2] and math.max(1, tonumber(first[2]) - now) or 1
  end
end
local tat = now
if interval > 0 and n > 0 then
  tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
  local room = math.floor((now + burst * interval - tat) / interval)
  if room < n then n = math.max(room, 0) end
  if n == 0 then wait = math.max(1, tat - burst * interval + interval - now) end
end
local out = {n, wait}
if n > 0 then
  if interval > 0 then
    redis.call('SET', KEYS[1], tat + n * interval, 'PX', math.ceil(burst * interval + n * interval) + 1000)
  end
  if max_in_flight > 0 then
    local seq = redis.call('INCR', KEYS[2] .. ':seq')
    for i = 1, n do
      local permit = ARGV[5] .. ':' .. seq .. ':' .. i
      redis.call('ZADD', KEYS[2], now + lease, permit)
      out[#out + 1] = permit
    end
  end
end
return out
"""

LIMIT_GIVE = r"""
-- calls.LimitGive: KEYS[1] rate, KEYS[2] in-flight permits
-- ARGV: unused (starts taken but not made), interval_ms, permits_json (["permit", ...] to release)
-- Unused starts go back to the rate (the arrival time moves back, never before now).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local unused, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
if unused > 0 and interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or now)
  local back = math.max(tat - unused * interval, now)
  redis.call('SET', KEYS[1], back, 'KEEPTTL')
end
local permits = cjson.decode(ARGV[3])
for _, p in ipairs(permits) do redis.call('ZREM', KEYS[2], p) end
return #permits
"""

LIMIT_RENEW = r"""
-- calls.LimitRenew: KEYS[1] in-flight permits, KEYS[2] config
-- ARGV: lease_ms, permits_json, max_per_second ('' for none), max_in_flight (0 for none)
-- Held permits live on while their jobs run (a dead worker's expire after lease_ms).  The
-- limits this worker enforces are published for as long (monitor, dashboard, /metrics).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for _, p in ipairs(cjson.decode(ARGV[2])) do
  redis.call('ZADD', KEYS[1], 'XX', now + lease, p)
end
redis.call('DEL', KEYS[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'max_per_second', ARGV[3]) end
if tonumber(ARGV[4]) > 0 then redis.call('HSET', KEYS[2], 'max_in_flight', ARGV[4]) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], lease) end
return 1
"""

READ = r"""
-- Strict-priority read in one round trip: take up to ARGV[3] new entries
-- from the lanes in KEYS[2..] order (high, normal, low), unless the stage is
-- paused (KEYS[1] holds it).  calls.Read: ARGV: group, consumer, count, stage
-- Returns {stream, entries, stream, entries, ...} as XREADGROUP gives them,
-- or 'paused'.
if redis.call('HEXISTS', KEYS[1], ARGV[4]) == 1 then return 'paused' end
local need = tonumber(ARGV[3])
local out = {}
for i = 2, #KEYS do
  local stream = KEYS[i]
  if need <= 0 then break end
  local got = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', need, 'STREAMS', stream, '>')
  if got and got[1] then
    local entries = got[1][2]
    out[#out + 1] = stream
    out[#out + 1] = entries
    need = need - #entries
  end
end
return out
"""

ALL: dict[str, str] = {
    "read": READ,
    "submit": SUBMIT,
    "start": START,
    "complete": COMPLETE,
    "retry": RETRY,
    "dead": DEAD,
    "release": RELEASE,
    "drop": DROP,
    "promote": PROMOTE,
    "replay": REPLAY,
    "cancel": CANCEL,
    "sweep": SWEEP,
    "notify_fanout": NOTIFY_FANOUT,
    "notify_take": NOTIFY_TAKE,
    "notify_settle": NOTIFY_SETTLE,
    "notify_replay": NOTIFY_REPLAY,
    "limit_take": LIMIT_TAKE,
    "limit_give": LIMIT_GIVE,
    "limit_renew": LIMIT_RENEW,
}
