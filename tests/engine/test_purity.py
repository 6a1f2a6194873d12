"""Import arrows: the engine is a pure library, the client library stays light.

Each check runs in a fresh interpreter, so that what one test imported
cannot hide what another module pulls in.
"""

import subprocess
import sys


def _loaded(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_engine_imports_no_grpc_protobuf_or_sql() -> None:
    bad = _loaded(
        "import sys, masterplan.server.engine, masterplan.server.engine.plan\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('grpc', 'google', 'sqlalchemy', 'psycopg', 'pymysql', 'prometheus_client') "
        "or m.startswith(('masterplan.v1', 'masterplan.codec', 'masterplan.tenancy', "
        "'masterplan.connector', 'masterplan.client'))"
        " or (m.startswith('masterplan.server.') and not m.startswith('masterplan.server.engine')))))\n"
    )
    assert bad == [], f"the engine imported: {bad}"


def test_client_library_loads_no_server_numba_or_scipy() -> None:
    bad = _loaded(
        "import sys, masterplan.client\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numba', 'scipy', 'sqlalchemy') or m.startswith(('masterplan.server', "
        "'masterplan.connector', 'masterplan.tenancy')))))\n"
    )
    assert bad == [], f"import masterplan.client loaded: {bad}"


def test_contract_imports_numpy_and_the_standard_library_only() -> None:
    third_party = _loaded(
        "import sys\n"
        "before = set(sys.modules)\n"
        "import masterplan.contract.tables, masterplan.contract.columns, "
        "masterplan.contract.coded, masterplan.contract.rows, masterplan.contract.names\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "std = set(sys.stdlib_module_names) | {'numpy', 'masterplan'}\n"
        "print(','.join(sorted(m for m in new if m not in std and not m.startswith('_'))))\n"
    )
    assert third_party == [], f"the contract imported: {third_party}"
