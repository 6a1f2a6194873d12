"""The engine is a pure library: importing it loads no gRPC, protobuf or SQL module."""

import subprocess
import sys


def test_engine_imports_no_grpc_protobuf_or_sql() -> None:
    code = (
        "import sys, server.engine, server.engine.plan, server.engine.rows\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('grpc', 'google', 'sqlalchemy', 'psycopg', 'pymysql', 'masterplan'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"the engine imported: {out.stdout.strip()}"
