from django.urls import path

from .tracker import go

urlpatterns = [
    path("<str:code>/", go, name="go"),
    path("<str:link_code>/<str:code>/", go, name="go-link"),
]
