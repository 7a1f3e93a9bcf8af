"""TVM / tvmc names accepted by the CLI."""
from tiletune.cli import main


def test_op_matmul_is_dense(capsys):
    assert main(["compile", "--op", "matmul", "--shape", "16,16,16", "--dump", "ir", "-q"]) == 0
    assert "def dense_16_16_16(" in capsys.readouterr().out
