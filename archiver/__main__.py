from archiver.cli.main import run

run()
