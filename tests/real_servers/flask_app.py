# A Flask app on Flask's own development server, which binds HOST:PORT itself (run under
# --adopt-bind). SIGINT ends it (KeyboardInterrupt; werkzeug exits 0).
import os
import sys

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return f"pid={os.getpid()}\n"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
