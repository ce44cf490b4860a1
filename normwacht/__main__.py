from normwacht.cli import app

app(prog_name="normwacht")
