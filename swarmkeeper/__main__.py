from swarmkeeper.cli import main

main()
