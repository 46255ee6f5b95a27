/**
 * The Lua scripts of the Redis identity store, each one atomic and safe to run twice (a command that
 * timed out on the client may still run when a stalled Redis wakes up).
 *
 * Keys, under the store's prefix `P`:
 * - `P held:<device>`: the device's held updates, a list of JSON entries `{ i: id, u: update }`, with a TTL.
 * - `P held-index`: every device with held updates, scored by the time of its last hold (oldest first
 *   for eviction, and to forget devices whose list expired).
 * - `P held-bytes`: bytes held per device (a hash), and `P held-total`: their sum. Bytes are the entries'
 *   lengths plus {@link DEVICE_OVERHEAD_BYTES} per device, an estimate of Redis's own cost.
 * - `P writer:<writer>`: the receipts of one writer (one `RedisIdentityStore`): the IDs of
 *   the entries it held (all scored 0, so they sort by ID, which the writer numbers in order), its newest {@link RECEIPTS_KEPT} kept, expiring
 *   {@link RECEIPTS_TTL_MS} after its last hold. A hold that timed out may still run when a stalled Redis
 *   wakes up; its retry carries the same entry IDs and the hold script skips every entry already
 *   receipted, so an entry (a `$add`) and the byte count it adds land once however often it is sent.
 * - `P claim:<device>`: takes in progress (a hash of take ID → `<time>:<JSON array of entries>`). A take
 *   moves the list there under its take ID; the same take repeated gets the same entries; the taker
 *   deletes it once it has them, or puts the entries back when it gives up. A claim older than
 *   `staleMs` (its taker died) is included in the device's next take.
 */

/** Receipts kept per writer: far more than a writer has in doubt (its local buffer holds 1000 by default). */
export const RECEIPTS_KEPT = 4096;

/** How long a writer's receipts outlive its last hold: far longer than any retry of an entry in doubt. */
export const RECEIPTS_TTL_MS = 60 * 60 * 1000;

/** What one device costs Redis beyond its entries: the key, the list, its index and size entries. */
export const DEVICE_OVERHEAD_BYTES = 256;

// Shared by the scripts: forget a device's list and its accounting. Returns its byte size.
const FORGET = `
local function forget(device, key)
  local size = tonumber(redis.call('HGET', KEYS[3], device) or '0')
  redis.call('DEL', key)
  redis.call('HDEL', KEYS[3], device)
  redis.call('ZREM', KEYS[2], device)
  if size > 0 then redis.call('DECRBY', KEYS[4], size) end
  return size
end
`;

// KEYS: list, index, sizes, total, receipts. ARGV: device, now, ttlMs, maxUpdates, maxDeviceBytes,
// maxBytes, maxDevices, listPrefix, overhead, receipts kept, receipts TTL ms, then pairs (entry ID, entry).
// Returns { per-device drops, total bytes, evicted device, its update count, ... }.
export const HOLD_SCRIPT = `${FORGET}
local device, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local maxUpdates, maxDeviceBytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local maxBytes, maxDevices, listPrefix, overhead = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
-- Receipts first: entries an earlier attempt of this writer already held are skipped. The receipt is
-- the script's first write, so a Redis over maxmemory refuses the whole script or none of it.
local fresh = {}
for i = 12, #ARGV, 2 do
  if not redis.call('ZSCORE', KEYS[5], ARGV[i]) then
    redis.call('ZADD', KEYS[5], 0, ARGV[i])
    table.insert(fresh, ARGV[i + 1])
  end
end
if #fresh == 0 then return { 0, tonumber(redis.call('GET', KEYS[4]) or '0') } end
redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -tonumber(ARGV[10]) - 1)
redis.call('PEXPIRE', KEYS[5], ARGV[11])
-- Devices whose list expired (TTL) leave the index and the byte count.
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl, 'LIMIT', 0, 100)
for _, other in ipairs(gone) do
  if other ~= device then forget(other, listPrefix .. other) end
end
local size = tonumber(redis.call('HGET', KEYS[3], device) or '0')
if size == 0 or redis.call('EXISTS', KEYS[1]) == 0 then
  if size > 0 then redis.call('DECRBY', KEYS[4], size) end
  size = overhead + #device
  redis.call('INCRBY', KEYS[4], size)
end
local dropped = 0
local added = 0
for _, entry in ipairs(fresh) do
  if overhead + #device + #entry > maxDeviceBytes then
    dropped = dropped + 1
  else
    redis.call('RPUSH', KEYS[1], entry)
    added = added + #entry
  end
end
size = size + added
local freed = 0
local length = redis.call('LLEN', KEYS[1])
while length > 0 and (length > maxUpdates or size - freed > maxDeviceBytes) do
  local oldest = redis.call('LPOP', KEYS[1])
  freed = freed + #oldest
  length = length - 1
  dropped = dropped + 1
end
size = size - freed
redis.call('INCRBY', KEYS[4], added - freed)
if length == 0 then
  forget(device, KEYS[1])
else
  redis.call('HSET', KEYS[3], device, size)
  redis.call('ZADD', KEYS[2], now, device)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
-- Over the store's bounds: the least recently held devices go first (never the one just held).
local result = { dropped, 0 }
local evictions = 0
while evictions < 1000 do
  local total = tonumber(redis.call('GET', KEYS[4]) or '0')
  if total <= maxBytes and redis.call('ZCARD', KEYS[2]) <= maxDevices then break end
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if oldest == nil or oldest == device then break end
  local key = listPrefix .. oldest
  local count = redis.call('LLEN', key)
  forget(oldest, key)
  table.insert(result, oldest)
  table.insert(result, count)
  evictions = evictions + 1
end
result[2] = tonumber(redis.call('GET', KEYS[4]) or '0')
return result
`;

// KEYS: list, index, sizes, total, claims. ARGV: device, take ID, now, staleMs, claim TTL ms.
// Returns the JSON array of the entries this take holds (the same on a repeat), or '' for none.
export const TAKE_SCRIPT = `${FORGET}
local existing = redis.call('HGET', KEYS[5], ARGV[2])
if existing then return string.sub(existing, string.find(existing, ':', 1, true) + 1) end
local now, staleMs = tonumber(ARGV[3]), tonumber(ARGV[4])
local entries = {}
local claims = redis.call('HGETALL', KEYS[5])
for i = 1, #claims, 2 do
  local value = claims[i + 1]
  local colon = string.find(value, ':', 1, true)
  if tonumber(string.sub(value, 1, colon - 1)) < now - staleMs then
    for _, entry in ipairs(cjson.decode(string.sub(value, colon + 1))) do table.insert(entries, entry) end
    redis.call('HDEL', KEYS[5], claims[i])
  end
end
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do table.insert(entries, entry) end
forget(ARGV[1], KEYS[1])
if #entries == 0 then return '' end
local json = cjson.encode(entries)
redis.call('HSET', KEYS[5], ARGV[2], ARGV[3] .. ':' .. json)
redis.call('PEXPIRE', KEYS[5], ARGV[5])
return json
`;

// KEYS: list, index, sizes, total, claims. ARGV: device, take ID, now, ttlMs, overhead. Puts a take's
// entries back in front of the device's list (the take gave up). Returns how many.
export const RELEASE_SCRIPT = `
local existing = redis.call('HGET', KEYS[5], ARGV[2])
if not existing then return 0 end
redis.call('HDEL', KEYS[5], ARGV[2])
local entries = cjson.decode(string.sub(existing, string.find(existing, ':', 1, true) + 1))
local size = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local added = 0
if size == 0 then added = tonumber(ARGV[5]) + #ARGV[1] end
for i = #entries, 1, -1 do
  redis.call('LPUSH', KEYS[1], entries[i])
  added = added + #entries[i]
end
redis.call('HSET', KEYS[3], ARGV[1], size + added)
redis.call('INCRBY', KEYS[4], added)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return #entries
`;
