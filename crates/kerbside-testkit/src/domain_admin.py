# Bulk and attribute changes to a TestDomain's sam.ldb through Samba's own Python bindings,
# run with Debian's /usr/bin/python3 (samba-tool would take about a second per object).
#
#   domain_admin.py SMB_CONF enctypes ACCOUNT VALUE
#       sets msDS-SupportedEncryptionTypes of ACCOUNT (24: AES only)
#   domain_admin.py SMB_CONF many-groups USER PREFIX COUNT
#       creates groups PREFIX-0000 ... (COUNT of them) with USER as their only member,
#       in one transaction
import sys

import ldb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB


def account_dn(db, name):
    found = db.search(
        base=db.domain_dn(),
        scope=ldb.SCOPE_SUBTREE,
        expression="(sAMAccountName=%s)" % ldb.binary_encode(name),
        attrs=[],
    )
    if len(found) != 1:
        sys.exit("no account %r in the domain" % name)
    return str(found[0].dn)


def main():
    conf, op = sys.argv[1], sys.argv[2]
    lp = LoadParm()
    lp.load(conf)
    db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
    if op == "enctypes":
        account, value = sys.argv[3], sys.argv[4]
        msg = ldb.Message()
        msg.dn = ldb.Dn(db, account_dn(db, account))
        msg["e"] = ldb.MessageElement(
            value, ldb.FLAG_MOD_REPLACE, "msDS-SupportedEncryptionTypes"
        )
        db.modify(msg)
    elif op == "many-groups":
        user, prefix, count = sys.argv[3], sys.argv[4], int(sys.argv[5])
        member = account_dn(db, user)
        db.transaction_start()
        try:
            for i in range(count):
                name = "%s-%04d" % (prefix, i)
                db.add(
                    {
                        "dn": "CN=%s,CN=Users,%s" % (name, db.domain_dn()),
                        "objectClass": "group",
                        "sAMAccountName": name,
                        "member": [member],
                    }
                )
        except BaseException:
            db.transaction_cancel()
            raise
        db.transaction_commit()
    else:
        sys.exit("unknown operation %r" % op)


main()
