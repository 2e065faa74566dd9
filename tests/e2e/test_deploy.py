#!/usr/bin/env python3
"""The shipped deployment files, end to end.

deploy/payhook.conf.example, deploy/apache/payhook.conf.in and
deploy/lighttpd/payhook.conf.in are rendered with this test's paths and
port (nothing else of them is changed) and a payment goes through each web
server: payhook's health check, an order created through the merchant API
from 127.0.0.1 (the Authorization header reaches payhook), a signed WeChat
Pay notification acknowledged and applied once, a body over max_body_bytes
refused.  Then each snippet is rendered once more without the loopback
address among the merchant networks: the merchant API is refused by the web
server, while notifications stay public.

The example configuration must also name every key payhook and its plugins
know, and nothing else: its keys are compared with the tables in
src/conf/conf_core.c and src/conf/conf.c and in each provider's source.

Apache is skipped when apache2 or mod_fcgid is missing, except under CI=true
where that fails.
"""

import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import deployed  # noqa: E402

EXAMPLE = os.path.join(deployed.DEPLOY_DIR, 'payhook.conf.example')
APACHE_IN = os.path.join(deployed.DEPLOY_DIR, 'apache', 'payhook.conf.in')
LIGHTTPD_IN = os.path.join(deployed.DEPLOY_DIR, 'lighttpd', 'payhook.conf.in')

APACHE_LOOPBACK = '    Require ip 127.0.0.1 ::1\n'
LIGHTTPD_LOOPBACK = '$HTTP["remoteip"] == "127.0.0.1" { }'
LIGHTTPD_SOCKET = '/run/lighttpd/payhook.sock'


# ---------------------------------------------------------------------------
# The example configuration names every key, and only known keys
# ---------------------------------------------------------------------------

def source(*parts):
    with open(os.path.join(harness.TOP_SRCDIR, *parts), encoding='utf-8') as fh:
        return fh.read()


def code_keys():
    """{'core': set, 'profile': set, plugin name: set} from the sources."""
    conf_c = source('src', 'conf', 'conf.c')
    m = re.search(r'conf_core_names\[CORE__MAX\]\s*=\s*\{(.*?)\};',
                  source('src', 'conf', 'conf_core.c'), re.S)
    core = set(re.findall(r'"(\w+)"', m.group(1))) if m else set()
    m = re.search(r'conf_profile_core_key\(.*?\n\}\n', conf_c, re.S)
    profile = set(re.findall(r'strcmp\(key, "(\w+)"\)', m.group(0))) \
        if m else set()
    # A provider's folder may hold several files: the table names the
    # plugin, the conf key table may sit in another file of the folder.
    plugins = {}
    for folder in sorted(glob.glob(os.path.join(harness.TOP_SRCDIR,
                                                'providers', '*'))):
        name, keys = None, set()
        for path in sorted(glob.glob(os.path.join(folder, '*.c'))):
            with open(path, encoding='utf-8') as fh:
                text = fh.read()
            m = re.search(r'PH_PROVIDER_DEFINE\w*\(\s*"(\w+)"', text)
            name = m.group(1) if m else name
            # Entries of a struct ph_conf_key table, designated
            # ({ .name = "k", .type = PH_CONF_... }) or positional.
            keys |= set(re.findall(r'\.name\s*=\s*"(\w+)",\s*\.type\s*=\s*'
                                   r'PH_CONF_', text))
            keys |= set(re.findall(r'=\s*\{\s*"(\w+)",\s*PH_CONF_', text))
        if name and keys:
            plugins[name] = keys
    return core, profile, plugins


def example_keys():
    """{section: set of keys} of the example, commented-out ones included:
    a section header or key line, with or without '; ' before it."""
    out = {}
    section = None
    with open(EXAMPLE, encoding='utf-8') as fh:
        for line in fh:
            body = re.sub(r'^;\s?', '', line.rstrip('\n'))
            m = re.match(r'\[([\w.-]+)\]\s*$', body)
            if m:
                section = m.group(1)
                out.setdefault(section, {})
                continue
            m = re.match(r'([a-z0-9_]+)\s*=\s*(\S.*)?$', body)
            if m and section is not None and not body.startswith(' '):
                out[section][m.group(1)] = (m.group(2) or '').strip()
    return out


def check_example_keys(tap):
    core, profile, plugins = code_keys()
    tap.ok(len(core) >= 13 and 'db_path' in core and 'lease_s' in core,
           'read the [core] keys from src/conf/conf_core.c', sorted(core))
    tap.ok({'plugin', 'api_base', 'query_schedule'} <= profile,
           'read the profile keys of the core from src/conf/conf.c',
           sorted(profile))
    tap.ok({'wechat', 'unionpay', 'template'} <= set(plugins),
           'read the keys of every provider plugin', sorted(plugins))
    ex = example_keys()
    have = set(ex.get('core', {}))
    tap.is_(sorted(core - have), [], 'the example sets or shows every '
            '[core] key')
    tap.is_(sorted(have - core), [], 'the example has no unknown [core] key')
    text = source('deploy', 'payhook.conf.example')
    for key in sorted(profile):
        tap.ok(re.search(r'^;?\s*%s\b' % key, text, re.M) is not None,
               'the example documents the profile key %s' % key)
    by_plugin = {}
    for section, keys in ex.items():
        if section.startswith('profile.'):
            by_plugin.setdefault(keys.get('plugin'), set()).update(keys)
    for name, keys in sorted(plugins.items()):
        shown = by_plugin.get(name, set())
        tap.is_(sorted(keys - shown), [],
                'the example shows every key of plugin %s' % name)
        tap.is_(sorted(shown - keys - profile), [],
                'the example shows no unknown key for plugin %s' % name)


# ---------------------------------------------------------------------------
# Serving through the snippets
# ---------------------------------------------------------------------------

def example_config(plugin_dir):
    """The example, with only its database and plugin folder moved into
    the instance; key files are relative, so they are the instance's."""
    return deployed.render(EXAMPLE, [
        ('db_path = /var/lib/payhook/payhook.mdb', 'db_path = var/payhook.mdb'),
        ('; plugin_dir = /usr/local/lib/payhook/providers',
         'plugin_dir = %s' % plugin_dir),
    ])


def snippet(kind, inst, fcgi, restricted=False):
    if kind == 'apache':
        subs = [('@PAYHOOK_FCGI@', fcgi), ('@PAYHOOK_CONFIG@', inst.config)]
        if restricted:
            subs.append((APACHE_LOOPBACK, ''))
        return deployed.render(APACHE_IN, subs)
    subs = [('@PAYHOOK_FCGI@', fcgi), ('@PAYHOOK_CONFIG@', inst.config),
            (LIGHTTPD_SOCKET, os.path.join(inst.dir, 'lighttpd', 'run',
                                           'payhook.sock'))]
    if restricted:
        subs.append((LIGHTTPD_LOOPBACK,
                     LIGHTTPD_LOOPBACK.replace('127.0.0.1', '192.0.2.1')))
    return deployed.render(LIGHTTPD_IN, subs)


def server_class(kind):
    return deployed.Apache if kind == 'apache' else deployed.Lighttpd


def proc_uid(pid):
    try:
        with open('/proc/%d/status' % pid) as fh:
            for line in fh:
                if line.startswith('Uid:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def serve(tap, kind):
    inst = harness.Instance(tap, name='deploy-' + kind,
                            profiles={'wxshop': harness.PROFILES['wxshop']})
    fcgi, plugins = deployed.private_copy(inst, harness.PAYHOOK_FCGI,
                                          harness.PLUGIN_DIR)
    harness.write_file(inst.config, example_config(plugins), mode=0o644)
    r = inst.cli('check')
    tap.is_(r.returncode, 0, '%s: payhook check accepts the example '
            'configuration' % kind, r.stdout + r.stderr)

    server = server_class(kind)(inst, snippet(kind, inst, fcgi))
    inst.server = server
    server.start()
    tap.ok(True, '%s: serves /healthz through the shipped snippet' % kind)
    user = deployed.service_user()[0]
    pids = server.backend_pids()
    tap.ok(len(pids) >= 1, '%s: started payhook.fcgi itself' % kind, pids)
    if os.geteuid() == 0:
        import pwd
        uid = pwd.getpwnam(user).pw_uid
        tap.ok(pids and all(proc_uid(p) == uid for p in pids),
               '%s: payhook.fcgi runs as %s' % (kind, user),
               [(p, proc_uid(p)) for p in pids])

    order = 'DEPLOY-%s-%s' % (kind.upper(), os.urandom(4).hex())
    r = inst.create_order(order, 1990)
    tap.is_(r.status, 201, '%s: POST /orders from 127.0.0.1 with the token'
            % kind, r.describe())
    r = inst.api('GET', '/orders/' + order, token=None)
    harness.check_json_error(tap, r, 401, '%s: no token: payhook itself '
                             'says 401' % kind)
    resp, _fields = inst.pay(order, 1990, harness.txn_id(kind))
    harness.check_ack(tap, resp, 'SUCCESS', '%s: signed notification' % kind)
    o = inst.order(order)
    tap.is_(o and o.get('state'), 'PAID', '%s: the order is PAID' % kind, o)
    again = inst.notify(_fields)
    harness.check_ack(tap, again, 'SUCCESS', '%s: the same notification '
                      'again' % kind)
    evs = [e for e in inst.all_events() if e.get('order_id') == order]
    tap.is_([e.get('type') for e in evs], ['order.paid'],
            '%s: one order.paid' % kind)
    big = inst.notify(b'<xml>' + b'x' * 70000 + b'</xml>')
    if kind == 'apache':
        # FcgidMaxRequestLen = max_body_bytes: mod_fcgid refuses it.
        tap.is_(big.status, 500, '%s: a body over max_body_bytes: 500 from '
                'mod_fcgid' % kind, big.describe())
        tap.like(server.read_log(), r'exceeds MaxRequestLen \(65536\)',
                 '%s: ... before payhook sees it' % kind)
    else:
        tap.is_(big.status, 413, '%s: a body over max_body_bytes: 413 from '
                'payhook' % kind, big.describe())
    server.stop()

    server = server_class(kind)(inst, snippet(kind, inst, fcgi,
                                              restricted=True))
    inst.server = server
    server.start()
    r = inst.get_order(order)
    tap.is_(r.status, 403, '%s: loopback not among the merchant networks: '
            'the web server refuses the merchant API' % kind, r.describe())
    r = inst.api('GET', '/events')
    tap.is_(r.status, 403, '%s: ... and the event feed' % kind, r.describe())
    r = inst.request('GET', '/healthz')
    tap.is_(r.status, 200, '%s: ... /healthz stays public' % kind,
            r.describe())
    r = inst.request('GET', '/readyz')
    tap.ok(r.status in (200, 503) and (r.json or {}).get('status') in
           ('ready', 'not_ready'), '%s: ... and /readyz' % kind,
           r.describe())
    again = inst.notify(_fields)
    harness.check_ack(tap, again, 'SUCCESS', '%s: ... notifications stay '
                      'public' % kind)
    server.stop()
    inst.cleanup()


def main(tap):
    check_example_keys(tap)
    serve(tap, 'lighttpd')
    missing = deployed.apache_missing()
    if missing and deployed.in_ci():
        tap.ok(False, 'Apache with mod_fcgid is needed under CI=true', missing)
    elif missing:
        deployed.skip(tap, 'Apache: ' + missing)
    else:
        serve(tap, 'apache')


if __name__ == '__main__':
    harness.run(main)
