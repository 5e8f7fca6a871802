from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from controlpanel import views
from core.api import alert_settings
from portfolio.api import AllowlistViewSet, portfolio_settings
from risk.api import account, daily_pnl, daily_pnl_csv, orders, pnl, positions, risk_settings
from trading.api import (
    CoinViewSet,
    DecisionViewSet,
    liquidations,
    trading_halt_view,
    trading_resume_view,
    trading_state,
)

router = SimpleRouter(trailing_slash=False)
router.register("coins", CoinViewSet, basename="coin")
router.register("allowlist", AllowlistViewSet, basename="allowlist")
router.register("decisions", DecisionViewSet, basename="decision")

urlpatterns = [
    path("favicon.ico", views.favicon),  # browsers ask on every page (the admin's too)
    path("", views.dashboard, name="dashboard"),
    path("admin/", admin.site.urls),
    path("api/health", views.health, name="health"),
    path("api/state", trading_state, name="trading-state"),
    path("api/trading/halt", trading_halt_view, name="trading-halt"),
    path("api/trading/resume", trading_resume_view, name="trading-resume"),
    path("api/settings/risk", risk_settings, name="risk-settings"),
    path("api/settings/portfolio", portfolio_settings, name="portfolio-settings"),
    path("api/settings/alerts", alert_settings, name="alert-settings"),
    path("api/daily-pnl", daily_pnl, name="daily-pnl"),
    path("api/daily-pnl.csv", daily_pnl_csv, name="daily-pnl-csv"),
    path("api/account", account, name="account"),
    path("api/positions", positions, name="positions"),
    path("api/orders", orders, name="orders"),
    path("api/liquidations", liquidations, name="liquidations"),
    path("api/pnl", pnl, name="pnl"),
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("panic.urls")),  # /panic, /panic/reset and the dashboard buttons
]
