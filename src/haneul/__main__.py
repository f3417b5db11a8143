from haneul.cli.main import main

main()
