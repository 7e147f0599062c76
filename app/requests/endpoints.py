from fastapi import APIRouter

router = APIRouter(tags=["compute-requests"])
