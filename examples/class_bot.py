#!/usr/bin/env python3
"""A class assistant bot for Aula: scripting a class through the API and the protocol.

It creates a class through the admin API, prints the student link as one JSON line, joins the
class as a teacher named "Aula Bot", greets everyone in chat, and whenever a student raises a
hand it answers in chat, lets that student speak, and lowers nothing on its own.

    pip install websockets
    python3 examples/class_bot.py --server http://127.0.0.1:8080 --admin-key KEY

With --max-hands N it leaves after reacting to N raised hands (the test suite uses that).
"""

import argparse
import json
import sys
import urllib.request

from websockets.sync.client import connect


def create_class(server, admin_key, name):
    request = urllib.request.Request(
        f"{server}/api/v1/classes",
        data=json.dumps({"name": name}).encode(),
        headers={"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="Aula's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--class-name", default="Office hours")
    parser.add_argument("--max-hands", type=int, default=0, help="leave after this many hands (0: never)")
    args = parser.parse_args()

    server = args.server.rstrip("/")
    created = create_class(server, args.admin_key, args.class_name)
    print(json.dumps({"class": created["id"], "student_url": created["student"]["url"],
                      "student_token": created["student"]["token"]}), flush=True)

    ws_url = server.replace("http", "ws", 1) + "/ws"
    with connect(ws_url) as ws:
        ws.send(json.dumps({"type": "join", "token": created["teacher"]["token"], "name": "Aula Bot"}))
        welcome = json.loads(ws.recv(timeout=10))
        if welcome["type"] != "welcome":
            sys.exit(f"join refused: {welcome}")
        names = {p["id"]: p["name"] for p in welcome["peers"]}
        ws.send(json.dumps({"type": "chat", "text": "Welcome! Raise your hand if you have a question."}))

        hands = 0
        for frame in ws:
            msg = json.loads(frame)
            kind = msg["type"]
            if kind in ("peer_joined", "peer_updated"):
                names[msg["peer"]["id"]] = msg["peer"]["name"]
            elif kind == "hand" and msg["raised"] and msg["peer"] != welcome["id"]:
                student = names.get(msg["peer"], "there")
                ws.send(json.dumps({"type": "grant", "peer": msg["peer"], "speak": True}))
                ws.send(json.dumps({"type": "chat", "text": f"{student}, go ahead: you may speak now."}))
                hands += 1
                if args.max_hands and hands >= args.max_hands:
                    ws.send(json.dumps({"type": "leave"}))
                    break
            elif kind == "error":
                print(f"server refused a message: {msg['code']}: {msg['message']}", file=sys.stderr)
            elif kind == "class_ended":
                break


if __name__ == "__main__":
    main()
