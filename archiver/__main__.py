from archiver.cli.main import main

main()
