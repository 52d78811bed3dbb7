"""The FastAPI cookbook's WebSocket endpoint, behind wsgate: no auth code at all.

wsgate checks the credential, the Origin, the scopes and the limits before this app hears of
the socket, closes the socket when the session ends, and tells the app who the user is.
Run: python3 -m uvicorn app:app --port 9000
(and npx wsgate serve --demo --proxy /secured-ws=ws://127.0.0.1:9000/secured-ws)
"""

from fastapi import Depends, FastAPI, WebSocket

from wsgate_identity import Identity, wsgate_identity

app = FastAPI()


@app.websocket("/secured-ws")
async def secured_websocket(
    websocket: WebSocket, identity: Identity = Depends(wsgate_identity)
):
    await websocket.accept()
    await websocket.send_text(f"Welcome {identity.name}!")
    async for data in websocket.iter_text():
        await websocket.send_text(f"You wrote: {data}")
