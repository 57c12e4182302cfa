from edgezoo.cli import console

console()
