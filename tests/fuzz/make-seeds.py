#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/NAME/)
from real examples: the end-to-end scenarios of tests/e2e/cases and the
worked examples of the providers' documentation (WeChat's signing
example, the v3 envelope and transaction, UnionPay's notification and
query answer fields).  Run it from anywhere; it rewrites seed-* files and
leaves other files (crashers kept as regression inputs) alone.

    python3 tests/fuzz/make-seeds.py
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'e2e'))
import harness  # noqa: E402  (only its pure helpers are used)

CORPUS = os.path.join(HERE, 'corpus')
# The merchant of WeChat's documented examples: the notification and the
# query answer name this appid, they and the signing example this mch_id.
WX_APPID = 'wx2421b1c4370ec43b'
WX_MCH_ID = '10000100'
FIXED = {'{appid}': WX_APPID, '{mch_id}': WX_MCH_ID,
         '{nonce}': '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
         '{txn}': '4200000123202611300000000001',
         '{time_end}': '20261130153000', '{key}': ''}


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode('utf-8')
    with open(os.path.join(d, 'seed-' + name), 'wb') as fh:
        fh.write(data)


def subst(v):
    if isinstance(v, str):
        for k, r in FIXED.items():
            v = v.replace(k, r)
    return v


def lines(pairs):
    return '\n'.join('%s=%s' % (k, subst(v)) for k, v in pairs)


def pairs_of(fields):
    return list(fields.items()) if isinstance(fields, dict) else \
        [tuple(p) for p in fields]


def wechat_cases():
    for name, case in harness.load_cases():
        stem = name[:-5]
        note = case.get('notify', {})
        raw = note.get('raw')
        if raw is not None:
            body = subst(raw).encode('utf-8')
        elif 'fields' in note:
            pairs = [(k, subst(v)) for k, v in pairs_of(note['fields'])]
            body = harness.notify_xml(pairs)
            out('fuzz_wechat_notify', stem + '-signed',
                ('H' if note.get('sign') == 'HMAC-SHA256' else 'S')
                + lines(pairs))
        else:
            continue
        out('fuzz_wechat_notify', stem + '-raw', body)
        out('fuzz_xml', stem, body)
        out('fuzz_router', stem, b'POST\n/notify/' +
            case.get('profile', 'wxshop').encode() + b'\n-\ntext/xml\n' + body)


# WeChat's published signing example (doc/design/protocols.md §1.2, TV-1).
WX_EXAMPLE = [('appid', 'wxd930ea5d5a258f4f'), ('mch_id', WX_MCH_ID),
              ('device_info', '1000'), ('body', 'test'),
              ('nonce_str', 'ibuaiVcKdpRxkhJA')]
WX_NOTIFY = [('appid', WX_APPID), ('attach', 'support'),
             ('bank_type', 'CFT'), ('fee_type', 'CNY'),
             ('is_subscribe', 'Y'), ('mch_id', WX_MCH_ID),
             ('nonce_str', '5d2b6c2a8db53831f7eda20af46e531c'),
             ('openid', 'oUpF8uMEb4qRXf22hE3X68TekukE'),
             ('out_trade_no', '1409811653'), ('result_code', 'SUCCESS'),
             ('return_code', 'SUCCESS'), ('time_end', '20140903131540'),
             ('total_fee', '1'), ('coupon_fee', '10'),
             ('coupon_count', '1'), ('coupon_type', 'CASH'),
             ('coupon_id', '10000'), ('coupon_fee_0', '100'),
             ('trade_type', 'JSAPI'),
             ('transaction_id', '1004400740201409030005092168')]
WX_QUERY = [('return_code', 'SUCCESS'), ('return_msg', 'OK'),
            ('appid', WX_APPID), ('mch_id', WX_MCH_ID),
            ('nonce_str', 'TN55wO9Pba5yENl8'), ('result_code', 'SUCCESS'),
            ('openid', 'oUpF8uN95-Ptaags6E_roPHg7AG0'),
            ('is_subscribe', 'Y'), ('trade_type', 'MICROPAY'),
            ('bank_type', 'CCB_DEBIT'), ('total_fee', '1'),
            ('fee_type', 'CNY'),
            ('transaction_id', '1008450740201411110005820873'),
            ('out_trade_no', '1415659990'), ('attach', 'order-1'),
            ('time_end', '20141111170043'), ('trade_state', 'SUCCESS'),
            ('cash_fee', '1')]
# The official downloadbill example (TV-8), as the bill target has it.
with open(os.path.join(CORPUS, 'fuzz_wechat_bill', 'tv8-crlf-bom'),
          'rb') as _fh:
    WX_BILL = _fh.read()
V3_TXN = {'appid': WX_APPID, 'mchid': '1230000109',
          'out_trade_no': '1217752501201407033233368018',
          'transaction_id': '1217752501201407033233368018',
          'trade_type': 'JSAPI', 'trade_state': 'SUCCESS',
          'trade_state_desc': '支付成功', 'bank_type': 'CMC',
          'attach': '', 'success_time': '2018-06-08T10:34:56+08:00',
          'payer': {'openid': 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'},
          'amount': {'total': 100, 'payer_total': 100, 'currency': 'CNY',
                     'payer_currency': 'CNY'}}
V3_REFUND = {'mchid': '1230000109', 'out_trade_no': '1217752501201407033233368018',
             'transaction_id': '1217752501201407033233368018',
             'out_refund_no': '1217752501201407033233368018',
             'refund_id': '50000000382019052709732678859',
             'refund_status': 'SUCCESS',
             'success_time': '2018-06-08T10:34:56+08:00',
             'user_received_account': '招商银行信用卡0403',
             'amount': {'total': 999, 'refund': 999, 'payer_total': 999,
                        'payer_refund': 999}}
V3_ENVELOPE = {'id': 'EV-2018022511223320873',
               'create_time': '2015-05-20T13:29:35+08:00',
               'resource_type': 'encrypt-resource',
               'event_type': 'TRANSACTION.SUCCESS', 'summary': '支付成功',
               'resource': {'original_type': 'transaction',
                            'algorithm': 'AEAD_AES_256_GCM',
                            'ciphertext': 'AAAAAAAAAAAAAAAAAAAAAAAAAAAA',
                            'associated_data': 'transaction',
                            'nonce': 'fdasflkja484'}}
# UnionPay's notification and its query answer name one trade alike.
UP_HEAD = [('version', '5.1.0'), ('encoding', 'UTF-8'),
           ('certId', '69026276696'), ('signMethod', '01')]
UP_TRADE = [('accessType', '0'), ('merId', '777290058110048'),
            ('orderId', '20261130153000001'), ('txnTime', '20261130153000'),
            ('txnAmt', '100'), ('currencyCode', '156'),
            ('queryId', '772611301530000000011')]
UP_NOTIFY = (UP_HEAD + [('txnType', '01'), ('txnSubType', '01'),
                        ('bizType', '000201')] + UP_TRADE +
             [('traceNo', '000001'), ('traceTime', '1130153000'),
              ('settleAmt', '100'), ('settleCurrencyCode', '156'),
              ('settleDate', '1130'), ('respCode', '00'),
              ('respMsg', 'success')])
UP_QUERY = (UP_HEAD + [('txnType', '00'), ('txnSubType', '00'),
                       ('bizType', '000000')] + UP_TRADE +
            [('respCode', '00'), ('respMsg', 'success'),
             ('origRespCode', '00'), ('origRespMsg', 'success'),
             ('settleAmt', '100'), ('settleDate', '1130'),
             ('traceNo', '000001'), ('traceTime', '1130153000')])


def form(pairs):
    return harness.unionpay_form(pairs)


def main():
    wechat_cases()
    out('fuzz_wechat_notify', 'doc-example-md5', 'S' + lines(WX_NOTIFY))
    out('fuzz_wechat_notify', 'doc-example-hmac', 'H' + lines(
        [('sign_type', 'HMAC-SHA256')] + WX_NOTIFY))
    out('fuzz_wechat_notify', 'v3-transaction',
        'Rt' + json.dumps(V3_TXN, ensure_ascii=False))
    out('fuzz_wechat_notify', 'v3-refund',
        'Rr' + json.dumps(V3_REFUND, ensure_ascii=False))
    out('fuzz_wechat_notify', 'v3-envelope',
        'E' + json.dumps(V3_ENVELOPE, ensure_ascii=False))
    out('fuzz_wechat_notify', 'v3-unsigned',
        'XWechatpay-Timestamp: 1764500000\nWechatpay-Nonce: abc\n'
        'Wechatpay-Signature: AAAA\nWechatpay-Serial: PUB_KEY_ID_01\0'
        + json.dumps(V3_ENVELOPE))
    out('fuzz_xml', 'doc-example', harness.notify_xml(WX_EXAMPLE))
    out('fuzz_xml', 'doctype', '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY '
        'a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><attach>&b;</attach></xml>')
    out('fuzz_xml', 'nested', '<xml>' + '<a>' * 50 + '</a>' * 50 + '</xml>')
    out('fuzz_wechat_query', 'orderquery', 'Q' + lines(WX_QUERY))
    out('fuzz_wechat_query', 'orderquery-notpay', 'Q' + lines(
        [(k, 'NOTPAY' if k == 'trade_state' else v) for k, v in WX_QUERY]))
    out('fuzz_wechat_query', 'closeorder', 'C' + lines(
        WX_QUERY[:6] + [('result_code', 'FAIL'), ('err_code', 'ORDERPAID')]))
    out('fuzz_wechat_query', 'v3-query', 'J2' + json.dumps(
        dict(V3_TXN, out_trade_no='1415659990', amount={
            'total': 1, 'payer_total': 1, 'currency': 'CNY',
            'payer_currency': 'CNY'}), ensure_ascii=False))
    out('fuzz_wechat_query', 'v3-notfound',
        'J4{"code":"ORDER_NOT_EXIST","message":"order does not exist"}')
    out('fuzz_wechat_query', 'raw', harness.notify_xml(WX_QUERY))
    out('fuzz_wechat_download', 'v2-bill', WX_BILL)
    out('fuzz_wechat_download', 'v2-nobill', harness.notify_xml(
        [('return_code', 'FAIL'), ('return_msg', 'No Bill Exist'),
         ('error_code', '20002')]))
    out('fuzz_wechat_download', 'v3-tradebill', 'T2' + json.dumps(
        {'hash_type': 'SHA1',
         'hash_value': '79bb0f45fc4c42234a918000b2668d689e2bde04',
         'download_url': 'https://api.mch.weixin.qq.com/v3/billdownload/'
         'file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA'}))
    out('fuzz_wechat_download', 'v3-nobill',
        'T4{"code":"NO_STATEMENT_EXIST","message":"no statement"}')
    out('fuzz_wechat_download', 'v3-file', b'F' + WX_BILL)
    out('fuzz_unionpay_notify', 'consume', 'S' + lines(UP_NOTIFY))
    out('fuzz_unionpay_notify', 'consume-500', 'S' + lines(
        [(k, '5.0.0' if k == 'version' else v) for k, v in UP_NOTIFY]))
    out('fuzz_unionpay_notify', 'raw', form(UP_NOTIFY))
    out('fuzz_unionpay_notify', 'polluted', form(UP_NOTIFY +
                                                 [('txnAmt', '10000000')]))
    out('fuzz_unionpay_query', 'paid', 'S' + lines(UP_QUERY))
    out('fuzz_unionpay_query', 'processing', 'S' + lines(
        [(k, '03' if k == 'origRespCode' else v) for k, v in UP_QUERY]))
    out('fuzz_unionpay_query', 'notfound', 'S' + lines(
        [(k, '34' if k == 'respCode' else v) for k, v in UP_QUERY[:13]]))
    out('fuzz_form', 'notify', form(UP_NOTIFY))
    out('fuzz_form', 'escapes', 'a=%E4%B8%AD&b=+x+&c=&d=%2526')
    out('fuzz_json', 'v3-envelope', json.dumps(V3_ENVELOPE))
    out('fuzz_json', 'v3-transaction', json.dumps(V3_TXN))
    out('fuzz_json', 'duplicate', '{"amount":{"total":1,"total":100000}}')
    out('fuzz_json', 'escaped-dup', '{"out_trade_no":"A","\\u006fut_trade_no":"B"}')
    for i, v in enumerate(['1', '0', '100', '999999999999', '0100', '-1',
                           '+100', '1e2', '100.0', ' 100', '１００',
                           '9223372036854775808', '99999999999999999999',
                           '12.34', '0.01', '20261130153000',
                           '20140230250000', 'CNY', 'cny',
                           'YWJjZA==', 'YWJjZA=']):
        out('fuzz_money', '%02d' % i, v)
    conf = open(os.path.join(HERE, '..', '..', 'etc', 'payhook.conf'),
                encoding='utf-8').read()
    conf = '\n'.join(l for l in conf.splitlines()
                     if not l.startswith('[core]')
                     and not l.startswith('plugin_dir'))
    out('fuzz_conf', 'demo', conf.replace('keys/wechat.key',
                                          'keys/wechat.key'))
    out('fuzz_conf', 'two-profiles',
        'db_path = var/x.mdb\napi_token_file = keys/api.token\n'
        'map_size_mb = 1\nbase_path = /pay\nlog_level = debug\n\n'
        '[profile.wxshop]\nplugin = wechat\nappid = wx2421b1c4370ec43b\n'
        'mch_id = 10000100\napi_key_file = keys/wechat.key\n'
        'sign_type = HMAC-SHA256\nquery_schedule = 15s,30s,1m,3m,10m,1h\n'
        'api_base = http://127.0.0.1:1\nallow_insecure_http = yes\n\n'
        '[profile.loose]\nplugin = wechat\nappid = wx1\nmch_id = 1\n'
        'api_key_file = keys/loose.key\n')
    out('fuzz_router', 'create', 'POST\n/orders\nT\napplication/json\n'
        '{"order_id":"R1","amount":100,"currency":"CNY","profile":"wxshop",'
        '"expires_in":600}')
    out('fuzz_router', 'get', 'GET\n/orders/R1\nT\n\n')
    out('fuzz_router', 'events', 'GET\n/events?after=0&limit=5\nT\n\n')
    out('fuzz_router', 'attempt', 'POST\n/orders/R1/attempts\nT\n'
        'application/json\n{"profile":"wxshop"}')
    out('fuzz_router', 'no-token', 'GET\n/orders/R1\n-\n\n')
    out('fuzz_router', 'health', 'GET\n/healthz\n-\n\n')
    out('fuzz_router', 'signed-pay', 'SIGN\n/notify/wxshop\n-\ntext/xml\n'
        + lines([(k, 'R1' if k == 'out_trade_no' else
                  '100' if k in ('total_fee', 'cash_fee') else v)
                 for k, v in WX_NOTIFY]))


if __name__ == '__main__':
    main()
