/**
 * Appends a producer's messages to the outbox exactly once, however often an append is repeated.
 *
 * A command that timed out on the client may still run when a stalled Redis wakes up, so the retry of an
 * append that did land would add the messages a second time; Mixpanel dedupes events by `$insert_id` but
 * applies every `/engage` and `/groups` update, so a repeated `$add` or `trackCharge` would count twice.
 * Each producer (one {@link RedisOutbox}) numbers its messages and keeps, in Redis, the number of the last
 * one it appended (`<stream>:producer:<id>`, one small key per producer with a TTL); the script skips
 * what is at or below it, in the same atomic step as the `XADD`s. Redis runs a connection's commands in
 * order, so when a retry runs, the attempt it repeats has run (or never will).
 *
 * The script also creates the consumer group with the stream, so a worker started once Redis is full
 * (when `XGROUP CREATE` is refused) finds it there.
 *
 * KEYS[1] stream, KEYS[2] producer key. ARGV[1] group, ARGV[2] producer key TTL (ms), ARGV[3] field,
 * ARGV[4..] pairs of (number, message JSON), in order. Returns { handled, stream length, error or false }:
 * the first `handled` messages are in the stream (appended now or by an earlier attempt).
 */
export const APPEND_SCRIPT = `
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
end
local handled = 0
local failure = false
local appended = false
for i = 4, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    local reply = redis.pcall('XADD', KEYS[1], '*', ARGV[3], ARGV[i + 1])
    if type(reply) == 'table' and reply.err then
      failure = reply.err
      break
    end
    last = seq
    appended = true
  end
  handled = handled + 1
end
if appended then redis.pcall('SET', KEYS[2], last, 'PX', ARGV[2]) end
return { handled, redis.call('XLEN', KEYS[1]), failure }
`;
