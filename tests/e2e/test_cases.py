"""Data-driven WeChat v2 notification scenarios: one JSON file per scenario
in tests/e2e/cases/, all run against one lighttpd + payhook.fcgi instance.

A case file:

  {
    "description": "what the scenario shows",
    "profile": "wxshop",            // a profile of harness.PROFILES
    "setup": [{"order_id": "CASE01", "amount": 100, "currency": "CNY"}],
    "notify": {
      "fields": {...} or [[name, value], ...],   // a list may repeat a name
      "sign": "MD5" | "HMAC-SHA256" | "none" | "bad",
      "cdata": true,                // false: values as escaped text
      "truncate": -20,              // optional: cut the body (python slice)
      "prefix": "...", "suffix": "...",  // optional: text around the body
      "raw": "..."                  // optional: this body instead
    },
    "expect": {
      "status": 200,
      "ack": "SUCCESS" | "FAIL",
      "order": {"order_id": "CASE01", "state": "PAID",
                "exceptions": ["amount_mismatch"], ...}   // or "absent": true
      "events": ["order.paid"]      // types of the new events, in order
    }
  }

String values may use {appid}, {mch_id} (of the case's profile), {txn} (a
fresh transaction id for this case), {time_end}, {nonce}; "raw" may also use
{sign}.  JSON numbers become bare XML integers, strings CDATA.  The
signature covers the fields as listed; when a name repeats, the first value
is the one signed (as an attacker who appends a field to a genuine message
would do).  "bad" signs with a wrong key.

Every case is sent twice: the second answer must be the same and add no
event (idempotence).
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check_ack  # noqa: E402


def substitute(value, env):
    if isinstance(value, str):
        for k, v in env.items():
            value = value.replace('{%s}' % k, v)
    return value


def build_body(case, env, prof):
    note = case['notify']
    algo = note.get('sign', prof['sign_type'])
    fields = note.get('fields', {})
    pairs = list(fields.items()) if isinstance(fields, dict) else \
        [tuple(p) for p in fields]
    pairs = [(k, substitute(v, env)) for k, v in pairs]
    first = {}
    for k, v in pairs:
        first.setdefault(k, v)
    sign = None
    if algo in ('MD5', 'HMAC-SHA256'):
        sign = harness.sign_v2(first, prof['key'], algo)
    elif algo == 'bad':
        sign = harness.sign_v2(first, 'X' * 32, prof['sign_type'])
    elif algo != 'none':
        raise ValueError('unknown sign %r' % algo)
    if 'raw' in note:
        raw = substitute(note['raw'], dict(env, sign=sign or ''))
        body = raw.encode('utf-8')
    else:
        if sign is not None:
            pairs.append(('sign', sign))
        body = harness.notify_xml(pairs, cdata=note.get('cdata', True))
    if 'truncate' in note:
        body = body[:note['truncate']]
    body = note.get('prefix', '').encode('utf-8') + body + \
        note.get('suffix', '').encode('utf-8')
    return body


def run_case(tap, inst, fname, case):
    name = fname[:-5]
    tap.diag('%s: %s' % (name, case.get('description', '')))
    profile = case.get('profile', 'wxshop')
    prof = inst.profiles[profile]
    env = {'appid': prof['appid'], 'mch_id': prof['mch_id'],
           'txn': harness.txn_id(name), 'time_end': harness.beijing_time_end(),
           'nonce': harness.nonce()}
    for o in case.get('setup', []):
        r = inst.create_order(o['order_id'], o['amount'],
                              o.get('currency', 'CNY'),
                              o.get('profile', profile))
        tap.is_(r.status, 201, '%s: setup order %s' % (name, o['order_id']),
                r.describe())
    base = inst.last_seq()
    body = build_body(case, env, prof)
    exp = case['expect']
    for attempt in ('', ' (again)'):
        r = inst.notify(body, profile)
        label = name + attempt
        if exp.get('status', 200) == 200:
            check_ack(tap, r, exp['ack'], label)
        else:
            tap.is_(r.status, exp['status'], '%s: HTTP %d' % (label,
                                                             exp['status']),
                    r.describe())
        want_events = exp.get('events', []) if not attempt else []
        got = inst.all_events(base)
        tap.is_([e.get('type') for e in got], want_events,
                '%s: new events %s' % (label, want_events or 'none'))
        base = got[-1]['seq'] if got else base
        want = exp.get('order')
        if want is None:
            continue
        r = inst.get_order(want['order_id'])
        if want.get('absent'):
            tap.is_(r.status, 404, '%s: order %s does not exist'
                    % (label, want['order_id']), r.describe())
            continue
        o = r.json or {}
        for k, v in want.items():
            if k == 'exceptions':
                got_v = [e.get('type') for e in o.get('exceptions') or []]
            else:
                got_v = o.get(k)
            tap.is_(got_v, substitute(v, env), '%s: order %s = %s'
                    % (label, k, v))


def main(tap):
    cases = harness.load_cases()
    tap.ok(len(cases) >= 10, 'at least ten scenarios in tests/e2e/cases',
           '%d found' % len(cases))
    inst = harness.Instance(tap, 'cases')
    inst.start()
    for fname, case in cases:
        run_case(tap, inst, fname, case)
    inst.stop()


if __name__ == '__main__':
    harness.run(main)
