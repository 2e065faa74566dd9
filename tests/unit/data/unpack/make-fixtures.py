#!/usr/bin/env python3
"""Writes the archives test_unpack reads: zips and a gzip made with
Python's zipfile and gzip modules.  Zip names in GBK without the UTF-8 flag
(as Alipay names its bill's members) cannot be written by zipfile, so they
are written with ASCII stand-ins of the same length and swapped, byte for
byte, after.  Run it here to make them again."""
import gzip
import io
import zipfile


def zipped(members, gbk=False):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            if gbk:
                name = name.replace('业务明细', 'X' * 8).replace('汇总', 'Y' * 4)
            z.writestr(name, data)
    raw = b.getvalue()
    if gbk:
        raw = raw.replace(b'X' * 8, '业务明细'.encode('gbk'))
        raw = raw.replace(b'Y' * 4, '汇总'.encode('gbk'))
    return raw


BILL = [('2088_20261130_业务明细.csv', 'detail,1\r\n'),
        ('2088_20261130_业务明细(汇总).csv', 'summary,2\r\n')]
FILES = {
    'bill-gbk.zip': zipped(BILL, gbk=True),
    'bill-utf8.zip': zipped(list(reversed(BILL))),
    'two-wanted.zip': zipped([('a_业务明细.csv', 'one\n'),
                              ('b_业务明细.csv', 'two\n')]),
    'bomb.zip': zipped([('x_业务明细.csv', '\0' * (2 * 1024 * 1024))]),
    'text.gz': gzip.compress(b'hello\nbill\n', mtime=0),
}
for name, data in FILES.items():
    with open(name, 'wb') as f:
        f.write(data)
