"""Two public reference applications as edge specifications."""

from __future__ import annotations

from dataclasses import dataclass

from meshwatch.calls import EdgeKey, Protocol, Workload
from meshwatch.identity.hosts import cloud_provider


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    """How one edge behaves at the daily peak."""

    source: str
    target: str
    port: int
    rate: float  # calls per second at the daily peak
    paths: tuple[str, ...] = ("/",)
    methods: tuple[str, ...] = ("GET",)
    request_bytes: float = 200.0
    response_bytes: float = 2000.0
    latency_ms: float = 10.0
    error_5xx: float = 0.005
    error_4xx: float = 0.01
    protocol: Protocol = Protocol.HTTP


@dataclass(frozen=True, slots=True)
class Topology:
    name: str
    namespace: str
    apps: tuple[str, ...]
    edges: tuple[EdgeSpec, ...]
    # (source app, target app, port) a compromised workload could reach but never does
    lateral_targets: tuple[EdgeKey, ...]
    external_hosts: tuple[str, ...] = ()

    def workload(self, app: str, version: str = "v1") -> Workload:
        if "." in app:  # an external host
            provider = cloud_provider(app)
            return Workload(
                id=f"external/{app}",
                workload=app,
                external=True,
                provider=f"{provider[0]}:{provider[1]}" if provider else "",
            )
        return Workload(
            id=f"{self.namespace}/{app}",
            namespace=self.namespace,
            workload=f"{app}-{version}",
            principal=f"spiffe://cluster.local/ns/{self.namespace}/sa/{app}",
            app=app,
            version=version,
            labels=(("app", app), ("version", version)),
        )


BOOKINFO = Topology(
    name="bookinfo",
    namespace="bookinfo",
    apps=("istio-ingressgateway", "productpage", "details", "reviews", "ratings", "mongodb"),
    edges=(
        EdgeSpec(
            "istio-ingressgateway",
            "productpage",
            9080,
            4.0,
            ("/productpage", "/login", "/logout", "/static/{id}"),
            ("GET", "POST"),
            600,
            5200,
            45,
        ),
        EdgeSpec("productpage", "details", 9080, 4.0, ("/details/{num}",), ("GET",), 300, 180, 4),
        EdgeSpec("productpage", "reviews", 9080, 4.0, ("/reviews/{num}",), ("GET",), 300, 450, 18),
        EdgeSpec("reviews", "ratings", 9080, 2.7, ("/ratings/{num}",), ("GET",), 300, 90, 3),
        EdgeSpec(
            "ratings", "mongodb", 27017, 1.0, ("",), ("",), 220, 340, 2, 0.0, 0.0, Protocol.TCP
        ),
        EdgeSpec(
            "details",
            "www.googleapis.com",
            443,
            0.6,
            ("/books/v1/volumes",),
            ("GET",),
            400,
            3100,
            80,
            0.01,
            0.0,
        ),
    ),
    lateral_targets=(
        EdgeKey("productpage", "ratings", 9080),
        EdgeKey("details", "mongodb", 27017),
        EdgeKey("reviews", "details", 9080),
    ),
    external_hosts=("www.googleapis.com",),
)

ONLINE_BOUTIQUE = Topology(
    name="online-boutique",
    namespace="boutique",
    apps=(
        "loadgenerator",
        "frontend",
        "adservice",
        "cartservice",
        "checkoutservice",
        "currencyservice",
        "emailservice",
        "paymentservice",
        "productcatalogservice",
        "recommendationservice",
        "shippingservice",
        "redis-cart",
    ),
    edges=(
        EdgeSpec(
            "loadgenerator",
            "frontend",
            80,
            5.0,
            ("/", "/product/{id}", "/cart", "/cart/checkout", "/setCurrency"),
            ("GET", "POST"),
            500,
            8000,
            60,
        ),
        EdgeSpec(
            "frontend",
            "productcatalogservice",
            3550,
            6.0,
            (
                "/hipstershop.ProductCatalogService/ListProducts",
                "/hipstershop.ProductCatalogService/GetProduct",
            ),
            ("POST",),
            120,
            2600,
            3,
        ),
        EdgeSpec(
            "frontend",
            "currencyservice",
            7000,
            5.0,
            (
                "/hipstershop.CurrencyService/Convert",
                "/hipstershop.CurrencyService/GetSupportedCurrencies",
            ),
            ("POST",),
            90,
            120,
            2,
        ),
        EdgeSpec(
            "frontend",
            "cartservice",
            7070,
            2.0,
            ("/hipstershop.CartService/GetCart", "/hipstershop.CartService/AddItem"),
            ("POST",),
            100,
            300,
            4,
        ),
        EdgeSpec(
            "frontend",
            "recommendationservice",
            8080,
            1.5,
            ("/hipstershop.RecommendationService/ListRecommendations",),
            ("POST",),
            150,
            200,
            6,
        ),
        EdgeSpec(
            "frontend",
            "adservice",
            9555,
            1.5,
            ("/hipstershop.AdService/GetAds",),
            ("POST",),
            80,
            350,
            5,
        ),
        EdgeSpec(
            "frontend",
            "shippingservice",
            50051,
            0.8,
            ("/hipstershop.ShippingService/GetQuote",),
            ("POST",),
            150,
            90,
            3,
        ),
        EdgeSpec(
            "frontend",
            "checkoutservice",
            5050,
            0.3,
            ("/hipstershop.CheckoutService/PlaceOrder",),
            ("POST",),
            400,
            600,
            60,
        ),
        EdgeSpec(
            "checkoutservice",
            "paymentservice",
            50051,
            0.3,
            ("/hipstershop.PaymentService/Charge",),
            ("POST",),
            200,
            80,
            20,
        ),
        EdgeSpec(
            "checkoutservice",
            "emailservice",
            5000,
            0.3,
            ("/hipstershop.EmailService/SendOrderConfirmation",),
            ("POST",),
            900,
            40,
            15,
        ),
        EdgeSpec(
            "checkoutservice",
            "shippingservice",
            50051,
            0.6,
            ("/hipstershop.ShippingService/ShipOrder", "/hipstershop.ShippingService/GetQuote"),
            ("POST",),
            150,
            90,
            3,
        ),
        EdgeSpec(
            "checkoutservice",
            "cartservice",
            7070,
            0.6,
            ("/hipstershop.CartService/GetCart", "/hipstershop.CartService/EmptyCart"),
            ("POST",),
            100,
            300,
            4,
        ),
        EdgeSpec(
            "recommendationservice",
            "productcatalogservice",
            3550,
            1.5,
            ("/hipstershop.ProductCatalogService/ListProducts",),
            ("POST",),
            100,
            2600,
            3,
        ),
        EdgeSpec(
            "cartservice",
            "redis-cart",
            6379,
            2.6,
            ("",),
            ("",),
            120,
            260,
            1,
            0.0,
            0.0,
            Protocol.TCP,
        ),
    ),
    lateral_targets=(
        EdgeKey("frontend", "paymentservice", 50051),
        EdgeKey("adservice", "redis-cart", 6379),
        EdgeKey("recommendationservice", "cartservice", 7070),
    ),
)

TOPOLOGIES = {t.name: t for t in (BOOKINFO, ONLINE_BOUTIQUE)}
