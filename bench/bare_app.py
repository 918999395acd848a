"""The ceiling for the ingest benchmark: a starlette app that reads the body and answers 202."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def accept(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"status": "accepted"}, status_code=202)


app = Starlette(routes=[Route("/alertmanager", accept, methods=["POST"])])
