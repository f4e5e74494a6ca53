from msgtrail.cli import main

main()
