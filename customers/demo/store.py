"""A synthetic retail store whose customers behave differently by type, as Segment messages.

Pure: ``generate_store(customers=, days=, seed=, now=)`` returns the catalogue, the
promotions and, per customer, the messages a Segment source library would have sent
(identify, page and track calls with the e-commerce v2 event names and properties).

Every random choice is made in time relative to the start of the window, by a generator
seeded with the seed and the customer's number. So:

- the same seed gives the same customers, events and ``messageId``s whatever ``now`` is,
  and a second load is deduplicated by the ingest; a larger ``customers`` only adds;
- ``now`` only places the result on the calendar: the window is ``[now - days, now)``,
  and a session falls at the hour the customer likes to shop in their own time zone.

The customer types (the ``demo_segment`` trait is the ground truth, for models to find):

- ``loyal``: visit every week or two through the whole window, buy often, dearer products,
  big baskets;
- ``bargain_hunter``: come back during most promotions (one every other week) and buy then,
  with the coupon, cheap products;
- ``window_shopper``: come every two or three weeks, view many products, add some to the
  cart, almost never buy;
- ``churning``: were active, visit less and less, and leave, on days spread over the whole
  window but never in its last weeks;
- ``new``: first seen in the last weeks, browse anonymously, sign up, buy now and then.
"""

import datetime as dt
import functools
import hashlib
import math
import random
import re
import unicodedata
import uuid
from dataclasses import dataclass, field

LOYAL = "loyal"
BARGAIN_HUNTER = "bargain_hunter"
WINDOW_SHOPPER = "window_shopper"
CHURNING = "churning"
NEW = "new"

# One slot per customer, repeated: exact shares however many customers (3:5:5:3:4 of 20).
_SEGMENT_SLOTS = [LOYAL] * 3 + [BARGAIN_HUNTER] * 5 + [WINDOW_SHOPPER] * 5 + [CHURNING] * 3
_SEGMENT_SLOTS += [NEW] * 4

STORE_NAME = "Journeyline Demo Store"
STORE_URL = "https://shop.example.com"
CURRENCY = "USD"
LIBRARY = {"name": "journeyline-demo", "version": "1.0"}
_DAY = 86_400.0

# The Segment e-commerce v2 spec names (plus "Signed Up" from the common lifecycle spec).
PRODUCTS_SEARCHED = "Products Searched"
PRODUCT_LIST_VIEWED = "Product List Viewed"
PRODUCT_VIEWED = "Product Viewed"
PRODUCT_ADDED = "Product Added"
PRODUCT_REMOVED = "Product Removed"
CART_VIEWED = "Cart Viewed"
CHECKOUT_STARTED = "Checkout Started"
CHECKOUT_STEP_COMPLETED = "Checkout Step Completed"
PAYMENT_INFO_ENTERED = "Payment Info Entered"
COUPON_APPLIED = "Coupon Applied"
ORDER_COMPLETED = "Order Completed"
PROMOTION_VIEWED = "Promotion Viewed"
PROMOTION_CLICKED = "Promotion Clicked"
SIGNED_UP = "Signed Up"
TRACK_EVENT_NAMES = frozenset(
    {
        PRODUCTS_SEARCHED, PRODUCT_LIST_VIEWED, PRODUCT_VIEWED, PRODUCT_ADDED,
        PRODUCT_REMOVED, CART_VIEWED, CHECKOUT_STARTED, CHECKOUT_STEP_COMPLETED,
        PAYMENT_INFO_ENTERED, COUPON_APPLIED, ORDER_COMPLETED, PROMOTION_VIEWED,
        PROMOTION_CLICKED, SIGNED_UP,
    }
)  # fmt: skip


def churn_quiet_days(days: int) -> int:
    """Churning customers send nothing in the last this many days of the window."""
    return max(1, min(21, days // 3))


def new_customer_days(days: int) -> int:
    """New customers are first seen within the last this many days of the window."""
    return max(1, min(21, days // 3))


# -- the catalogue ---------------------------------------------------------------------

_CATEGORIES = {
    # category: (lowest price, highest price, products)
    "Apparel": (15, 120, ["T-Shirt", "Hoodie", "Denim Jacket", "Chinos", "Linen Shirt",
                          "Wool Sweater", "Rain Jacket", "Polo Shirt"]),
    "Footwear": (30, 180, ["Running Shoes", "Leather Boots", "Canvas Sneakers", "Sandals",
                           "Hiking Boots", "Loafers"]),
    "Electronics": (20, 400, ["Wireless Earbuds", "Bluetooth Speaker", "Smartwatch",
                              "Noise-Cancelling Headphones", "E-Reader", "Action Camera",
                              "Power Bank"]),
    "Home & Kitchen": (12, 150, ["Chef's Knife", "Cast Iron Skillet", "French Press",
                                 "Ceramic Vase", "Bedding Set", "Desk Lamp", "Throw Blanket"]),
    "Beauty": (6, 90, ["Face Serum", "Hand Cream", "Lip Balm Set", "Shampoo Bar", "Perfume",
                       "Sunscreen"]),
    "Sports & Outdoors": (10, 250, ["Yoga Mat", "Water Bottle", "Camping Tent",
                                    "Trail Backpack", "Resistance Bands", "Cycling Gloves"]),
    "Books": (8, 45, ["Cookbook", "Travel Guide", "Novel", "Photography Book",
                      "Picture Book"]),
    "Toys & Games": (8, 70, ["Board Game", "Jigsaw Puzzle", "Building Blocks Set",
                             "Plush Bear", "Card Game"]),
}  # fmt: skip
_ADJECTIVES = ["Classic", "Everyday", "Premium", "Organic", "Urban", "Coastal", "Alpine",
               "Nordic", "Vintage", "Essential", "Compact", "Deluxe"]  # fmt: skip
_BRANDS = ["Northwind", "Harbor & Pine", "Kestrel", "Lumen", "Fieldcraft", "Oak Street",
           "Bluefin", "Marlowe"]  # fmt: skip
_PRODUCTS_PER_CATEGORY = 24
_SEARCH_TERMS = {
    "Apparel": ["hoodie", "linen shirt", "rain jacket", "t shirt"],
    "Footwear": ["running shoes", "boots", "sneakers"],
    "Electronics": ["earbuds", "headphones", "smartwatch", "speaker"],
    "Home & Kitchen": ["skillet", "coffee", "lamp", "blanket"],
    "Beauty": ["serum", "sunscreen", "perfume"],
    "Sports & Outdoors": ["yoga mat", "tent", "backpack"],
    "Books": ["cookbook", "travel guide", "novel"],
    "Toys & Games": ["board game", "puzzle", "lego"],
}


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    sku: str
    name: str
    brand: str
    category: str
    price: float

    @property
    def slug(self) -> str:
        return _slug(self.name)

    @property
    def url(self) -> str:
        return f"{STORE_URL}/products/{self.slug}"

    def properties(self, **extra) -> dict:
        """The product fields of Segment's e-commerce spec."""
        return {
            "product_id": self.product_id,
            "sku": self.sku,
            "name": self.name,
            "brand": self.brand,
            "category": self.category,
            "price": self.price,
            "currency": CURRENCY,
            "url": self.url,
            "image_url": f"{STORE_URL}/images/{self.product_id}.jpg",
            **extra,
        }


@dataclass(frozen=True, slots=True)
class Promotion:
    promotion_id: str
    name: str
    coupon: str
    discount_percent: int
    first_day: int  # days from the start of the window
    last_day: int

    def covers(self, day: int) -> bool:
        return self.first_day <= day <= self.last_day


@dataclass(slots=True)
class DemoCustomer:
    number: int
    segment: str
    user_id: str
    anonymous_id: str
    email: str
    timezone: str
    messages: list[dict] = field(default_factory=list)

    def tracks(self, name: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == "track" and m["event"] == name]


@dataclass(slots=True)
class DemoStore:
    seed: int
    days: int
    now: dt.datetime
    products: list[Product]
    promotions: list[Promotion]
    customers: list[DemoCustomer]

    @property
    def message_count(self) -> int:
        return sum(len(customer.messages) for customer in self.customers)

    def messages(self):
        """Every message, customer after customer, each customer's in time order."""
        for customer in self.customers:
            yield from customer.messages


def _message_id(key: str) -> str:
    """A UUID-shaped id that only the key decides (uuid.uuid5 costs twice as much)."""
    digest = hashlib.blake2b(key.encode(), digest_size=16, person=b"journeyline-demo").hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


@functools.cache
def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _catalogue(rng: random.Random) -> list[Product]:
    products = []
    for category_number, (category, (low, high, nouns)) in enumerate(_CATEGORIES.items()):
        names = [f"{adjective} {noun}" for noun in nouns for adjective in _ADJECTIVES]
        for number, name in enumerate(rng.sample(names, _PRODUCTS_PER_CATEGORY)):
            # Prices spread evenly on a log scale, ending in .99 as shops' prices do.
            price = math.exp(rng.uniform(math.log(low), math.log(high)))
            products.append(
                Product(
                    product_id=f"P{(category_number + 1) * 1000 + number}",
                    sku=f"{_slug(category)[:3].upper()}-{number + 1:04d}",
                    name=name,
                    brand=rng.choice(_BRANDS),
                    category=category,
                    price=max(1, round(price)) - 0.01,
                )
            )
    return products


# A promotion starts every this many days (a sale every other week): any 30 days hold two,
# so the older and the newer month of history look alike to bargain hunters and models.
_PROMOTION_EVERY = 15


def _promotions(rng: random.Random, days: int) -> list[Promotion]:
    names = [("Spring Sale", "SPRING"), ("Weekend Flash Sale", "FLASH"),
             ("Members' Days", "MEMBERS"), ("Clearance", "CLEAR"), ("Summer Sale", "SUMMER"),
             ("Back to School", "SCHOOL"), ("Autumn Sale", "AUTUMN"), ("Winter Sale", "WINTER")]  # fmt: skip
    promotions = []
    day = rng.randint(3, 9)
    number = 0
    while day < days:
        name, code = names[number % len(names)]
        percent = rng.choice([10, 15, 20, 25])
        length = rng.randint(2, 4)
        promotions.append(
            Promotion(
                promotion_id=f"promo-{number + 1}",
                name=name,
                coupon=f"{code}{percent}",
                discount_percent=percent,
                first_day=day,
                last_day=min(days - 1, day + length - 1),
            )
        )
        number += 1
        day += _PROMOTION_EVERY
    return promotions


# -- people ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Country:
    code: str
    locale: str
    share: int
    cities: tuple[tuple[str, str, int], ...]  # city, IANA zone, standard UTC offset
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    phone_prefix: str
    phone_digits: int


_COUNTRIES = (
    _Country("US", "en-US", 34,
             (("New York", "America/New_York", -5), ("Chicago", "America/Chicago", -6),
              ("Denver", "America/Denver", -7), ("Los Angeles", "America/Los_Angeles", -8),
              ("Seattle", "America/Los_Angeles", -8), ("Miami", "America/New_York", -5)),
             ("James", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "David", "Linda",
              "Emily", "Daniel", "Olivia", "Ethan"),
             ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia",
              "Wilson", "Taylor"), "+1", 10),
    _Country("GB", "en-GB", 14,
             (("London", "Europe/London", 0), ("Manchester", "Europe/London", 0),
              ("Edinburgh", "Europe/London", 0), ("Bristol", "Europe/London", 0)),
             ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Sophie"),
             ("Evans", "Thomas", "Roberts", "Walker", "Wright", "Hughes", "Green"), "+44", 10),
    _Country("NL", "nl-NL", 8,
             (("Amsterdam", "Europe/Amsterdam", 1), ("Rotterdam", "Europe/Amsterdam", 1),
              ("Utrecht", "Europe/Amsterdam", 1)),
             ("Daan", "Emma", "Sem", "Julia", "Lucas", "Tess", "Finn", "Sanne"),
             ("de Jong", "Jansen", "de Vries", "van Dijk", "Bakker", "Visser", "Smit"),
             "+31", 9),
    _Country("DE", "de-DE", 10,
             (("Berlin", "Europe/Berlin", 1), ("Munich", "Europe/Berlin", 1),
              ("Hamburg", "Europe/Berlin", 1), ("Cologne", "Europe/Berlin", 1)),
             ("Lukas", "Mia", "Leon", "Hannah", "Jonas", "Lena", "Felix", "Marie"),
             ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Wagner"),
             "+49", 11),
    _Country("FR", "fr-FR", 8,
             (("Paris", "Europe/Paris", 1), ("Lyon", "Europe/Paris", 1),
              ("Marseille", "Europe/Paris", 1)),
             ("Gabriel", "Louise", "Léo", "Jade", "Hugo", "Chloé", "Louis", "Camille"),
             ("Martin", "Bernard", "Dubois", "Durand", "Lefèvre", "Moreau", "Laurent"),
             "+33", 9),
    _Country("ES", "es-ES", 6,
             (("Madrid", "Europe/Madrid", 1), ("Barcelona", "Europe/Madrid", 1),
              ("Valencia", "Europe/Madrid", 1)),
             ("Hugo", "Lucía", "Martín", "Sofía", "Pablo", "Martina", "Álvaro", "Carmen"),
             ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez"),
             "+34", 9),
    _Country("CA", "en-CA", 6,
             (("Toronto", "America/Toronto", -5), ("Vancouver", "America/Vancouver", -8),
              ("Montreal", "America/Toronto", -5)),
             ("Liam", "Charlotte", "Noah", "Emma", "William", "Chloe", "Benjamin"),
             ("Tremblay", "Roy", "Gagnon", "MacDonald", "Campbell", "Anderson"), "+1", 10),
    _Country("AU", "en-AU", 6,
             (("Sydney", "Australia/Sydney", 10), ("Melbourne", "Australia/Melbourne", 10),
              ("Brisbane", "Australia/Brisbane", 10)),
             ("Jack", "Charlotte", "William", "Olivia", "Thomas", "Mia", "Lachlan"),
             ("Smith", "Jones", "Nguyen", "Kelly", "Ryan", "Mitchell"), "+61", 9),
    _Country("JP", "ja-JP", 4,
             (("Tokyo", "Asia/Tokyo", 9), ("Osaka", "Asia/Tokyo", 9)),
             ("Haruto", "Yui", "Sota", "Hina", "Yuto", "Sakura"),
             ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito"), "+81", 10),
    _Country("BR", "pt-BR", 4,
             (("São Paulo", "America/Sao_Paulo", -3), ("Rio de Janeiro", "America/Sao_Paulo", -3)),
             ("Miguel", "Alice", "Arthur", "Helena", "Heitor", "Laura"),
             ("Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa"), "+55", 11),
)  # fmt: skip
_COUNTRY_WEIGHTS = [country.share for country in _COUNTRIES]
_EMAIL_DOMAINS = ["example.com", "example.net", "example.org"]  # reserved: nobody's inbox
_USER_AGENTS = {
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
}


def _phone(rng: random.Random, country: _Country) -> str:
    if country.phone_prefix == "+1":
        # 555-01xx numbers are reserved for fiction in North America.
        return f"+1{rng.randint(201, 989)}55501{rng.randint(0, 99):02d}"
    if country.code == "GB":
        return f"+447700900{rng.randint(0, 999):03d}"  # Ofcom's drama range
    digits = "".join(str(rng.randint(0, 9)) for _ in range(country.phone_digits - 1))
    return f"{country.phone_prefix}{rng.randint(1, 9)}{digits}"


# -- behaviour -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Behaviour:
    # Each customer has a usual number of days between visits, drawn from this range, and
    # keeps to it with some jitter: a steady customer is rarely away for a month by chance.
    visit_every: tuple[float, float]
    promotion_visit: float  # chance of a visit during each promotion
    views: tuple[int, int]
    search_probability: float
    # Probabilities of how a session ends: an order, a checkout left, a cart left.
    order: float
    promotion_order: float
    checkout_abandoned: float
    cart_abandoned: float
    basket: tuple[int, int]
    price_taste: float  # > 0 prefers dear products, < 0 cheap ones
    coupon_probability: float  # uses the promotion's coupon when ordering during one
    anonymous_first_probability: float


BEHAVIOURS = {
    LOYAL: Behaviour((11, 17), 0.0, (1, 2), 0.4, 0.7, 0.75, 0.05, 0.08, (1, 4), 0.8, 0.2, 0.3),
    # Hardly ever seen between promotions, and at most of them.
    BARGAIN_HUNTER: Behaviour((200, 300), 0.8, (1, 3), 0.3, 0.03, 0.4, 0.08, 0.2, (1, 2), -1.2, 0.95, 0.4),
    WINDOW_SHOPPER: Behaviour((13, 21), 0.0, (2, 4), 0.5, 0.015, 0.03, 0.04, 0.2, (1, 2), 0.0, 0.3, 0.5),
    CHURNING: Behaviour((5, 10), 0.0, (1, 2), 0.3, 0.3, 0.35, 0.05, 0.1, (1, 3), 0.2, 0.3, 0.3),
    NEW: Behaviour((5, 12), 0.1, (2, 4), 0.4, 0.2, 0.3, 0.1, 0.15, (1, 3), 0.0, 0.5, 1.0),
}  # fmt: skip
# The gap between two visits is the usual gap times a Gamma(shape, 1/shape) draw (mean 1):
# shape 12 keeps nine gaps in ten under 1.4 times the usual one. Independent daily coin
# flips left a quarter of the steady customers silent for 30 days by chance: churn labels
# no feature could predict.
_REGULARITY = 12.0
# A churning customer's gaps grow by this factor after each visit until they leave.
_FADING = 1.3


# Hours of the day (local time) people shop at, and how much.
_SHOPPING_HOURS = [7, 8, 9, 12, 13, 17, 18, 19, 20, 21, 22, 23]
_SHOPPING_HOUR_WEIGHTS = [2, 3, 2, 4, 4, 2, 3, 5, 6, 6, 4, 2]


class _Calendar:
    """Places relative times on the calendar. Holds no randomness, so ``now`` changes
    where things fall, never what they are."""

    def __init__(self, now: dt.datetime, days: int) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.end = now.astimezone(dt.UTC)
        self.start = self.end - dt.timedelta(days=days)
        self.days = days
        midnight = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        self._start_hour = (self.start - midnight).total_seconds() / 3600

    def session_start(self, *, day: int, local_hour: float, utc_offset: int) -> float:
        """Seconds from the window start of a session on ``day`` at a local hour."""
        hours_into_day = (local_hour - utc_offset - self._start_hour) % 24
        offset = day * _DAY + hours_into_day * 3600
        # A session in the last hour of the window would run past now: a day earlier.
        if offset > self.days * _DAY - 3600:
            offset -= _DAY
        return offset

    def iso(self, offset: float) -> str:
        moment = self.start + dt.timedelta(seconds=offset)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _CustomerWriter:
    """Writes one customer's messages, session after session."""

    def __init__(self, *, store, number: int, segment: str, calendar: _Calendar) -> None:
        self.rng = random.Random(f"journeyline-demo:{store.seed}:{number}")
        self.store = store
        self.number = number
        self.segment = segment
        self.behaviour = BEHAVIOURS[segment]
        self.calendar = calendar
        self.sequence = 0
        self.orders = 0
        self.identified = False
        self.last_at = 0.0
        self.messages: list[dict] = []
        self._make_person()

    def _make_person(self) -> None:
        rng = self.rng
        country = rng.choices(_COUNTRIES, weights=_COUNTRY_WEIGHTS)[0]
        city, zone, offset = rng.choice(country.cities)
        first, last = rng.choice(country.first_names), rng.choice(country.last_names)
        self.country = country
        self.utc_offset = offset
        self.user_id = f"demo-{self.store.seed}-{self.number:05d}"
        self.anonymous_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        local = f"{_slug(first)}.{_slug(last)}".replace("-", "")
        self.email = f"{local}.{self.number}@{rng.choice(_EMAIL_DOMAINS)}"
        self.traits = {
            "email": self.email,
            "firstName": first,
            "lastName": last,
            "phone": _phone(rng, country),
            "city": city,
            "country": country.code,
            "demo_segment": self.segment,
        }
        self.timezone = zone
        self.device = "mobile" if rng.random() < 0.45 else "desktop"
        self.context = {
            "library": LIBRARY,
            "timezone": zone,
            "locale": country.locale,
            "ip": f"203.0.113.{rng.randint(1, 254)}",  # documentation range
            "userAgent": _USER_AGENTS[self.device],
        }
        self.favourite_categories = rng.sample(list(_CATEGORIES), 2)
        self.favourite_hour = rng.choices(_SHOPPING_HOURS, weights=_SHOPPING_HOUR_WEIGHTS)[0]

    # -- when ------------------------------------------------------------------------

    def session_days(self) -> list[int]:
        rng, days, behaviour = self.rng, self.calendar.days, self.behaviour
        every = rng.uniform(*behaviour.visit_every)
        if self.segment == NEW:
            first = days - rng.randint(1, new_customer_days(days))
            moment = float(first)
        else:
            # Known before the window opens: their first visit in it falls somewhere in
            # their usual gap, so every steady customer has history from the start.
            first, moment = 0, rng.uniform(0, every)
        end = days
        if self.segment == CHURNING:
            # Leaving days spread evenly over the history (never in its last weeks), so the
            # older and the newer halves both have customers who just left. The last visit
            # is the last one of their fading pace before that day.
            last_active = max(1, days - churn_quiet_days(days) - 1)
            leave = rng.randint(min(last_active, max(1, days // 30)), last_active)
            end = leave + 1
        chosen = {min(int(moment), end - 1)} if self.segment == CHURNING else set()
        gap = every
        while moment < end:
            chosen.add(int(moment))
            if self.segment == CHURNING:
                gap *= _FADING  # fading: a little longer away after each visit
            moment += gap * rng.gammavariate(_REGULARITY, 1 / _REGULARITY)
        for promotion in self.store.promotions:
            low, high = max(first, promotion.first_day), min(end - 1, promotion.last_day)
            if low <= high and rng.random() < behaviour.promotion_visit:
                chosen.add(rng.randint(low, high))
        return sorted(chosen) or [first]

    # -- what ------------------------------------------------------------------------

    def write(self) -> list[dict]:
        messages = self.messages
        days = self.session_days()
        anonymous_first = self.rng.random() < self.behaviour.anonymous_first_probability
        for session_number, day in enumerate(days):
            hour = (self.favourite_hour + self.rng.gauss(0, 1.5)) % 24
            start = self.calendar.session_start(
                day=day, local_hour=hour, utc_offset=self.utc_offset
            )
            first = session_number == 0
            anonymous = first and anonymous_first
            self._session(day=day, start=start, anonymous=anonymous, first=first)
            if anonymous:
                # Signs up (or in) at the end of the first visit; later ones carry the userId.
                self._identify(
                    self.last_at + self.rng.uniform(5, 60), signed_up=self.segment == NEW
                )
        return messages

    def _emit(self, message: dict, at: float) -> None:
        self.sequence += 1
        message["messageId"] = _message_id(f"{self.store.seed}:{self.number}:{self.sequence}")
        message["timestamp"] = self.calendar.iso(at)
        message["anonymousId"] = self.anonymous_id
        if self.identified:
            message["userId"] = self.user_id
        message.setdefault("context", self.context)
        self.messages.append(message)
        self.last_at = at

    def _track(self, name: str, properties: dict, at: float, context: dict | None) -> None:
        message = {"type": "track", "event": name, "properties": properties}
        if context is not None:
            message["context"] = context
        self._emit(message, at)

    def _page(self, name: str, path: str, title: str, at: float, context: dict | None) -> None:
        properties = {"path": path, "url": STORE_URL + path, "title": f"{title} | {STORE_NAME}"}
        message = {"type": "page", "name": name, "properties": properties}
        if context is not None:
            message["context"] = context
        self._emit(message, at)

    def _identify(self, at: float, *, signed_up: bool) -> None:
        self.identified = True
        if signed_up:
            created_at = self.calendar.iso(at)
        else:
            created_at = self.calendar.iso(-self.rng.uniform(30, 700) * _DAY)
        self._emit({"type": "identify", "traits": {**self.traits, "createdAt": created_at}}, at)
        if signed_up:
            self._track(SIGNED_UP, {"method": "email"}, at + 1, None)

    def _pick_product(self, category: str | None = None) -> Product:
        rng = self.rng
        if category is None:
            if rng.random() < 0.7:
                category = rng.choice(self.favourite_categories)
            else:
                category = rng.choice(list(_CATEGORIES))
        products, weights = self.store.weighted(category, self.behaviour.price_taste)
        return rng.choices(products, cum_weights=weights)[0]

    def _outcome(self, *, in_promotion: bool, anonymous: bool) -> str:
        behaviour, roll = self.behaviour, self.rng.random()
        order = behaviour.promotion_order if in_promotion else behaviour.order
        if anonymous:
            order = 0.0  # one signs in to check out: a first anonymous visit only browses
        for outcome, probability in (
            ("order", order),
            ("checkout_abandoned", 0.0 if anonymous else behaviour.checkout_abandoned),
            ("cart_abandoned", behaviour.cart_abandoned),
        ):
            if roll < probability:
                return outcome
            roll -= probability
        return "browse"

    def _session(self, *, day: int, start: float, anonymous: bool, first: bool) -> None:
        rng, behaviour = self.rng, self.behaviour
        promotion = self.store.promotion_on.get(day)
        context = None
        if promotion and rng.random() < 0.6:
            context = {**self.context, "campaign": {
                "name": promotion.name, "source": "newsletter", "medium": "email",
                "content": promotion.coupon,
            }}  # fmt: skip
        elif rng.random() < 0.15:
            context = {**self.context, "campaign": {
                "name": "always-on", "source": "google", "medium": "cpc",
            }}  # fmt: skip
        outcome = self._outcome(in_promotion=promotion is not None, anonymous=anonymous)
        at = start
        if first and not anonymous:
            self._identify(at, signed_up=self.segment == NEW)
            at += rng.uniform(2, 10)

        self._page("Home", "/", "Home", at, context)
        if promotion and rng.random() < 0.7:
            at += rng.uniform(2, 8)
            promotion_fields = {
                "promotion_id": promotion.promotion_id,
                "name": promotion.name,
                "creative": f"{_slug(promotion.name)}-banner",
                "position": "home_banner_top",
            }
            self._track(PROMOTION_VIEWED, promotion_fields, at, context)
            if self.segment == BARGAIN_HUNTER or rng.random() < 0.3:
                at += rng.uniform(2, 8)
                self._track(PROMOTION_CLICKED, promotion_fields, at, context)

        category = rng.choice(self.favourite_categories)
        listed = [self._pick_product(category) for _ in range(6)]
        listed = list(dict.fromkeys(listed))
        at += rng.uniform(5, 30)
        if rng.random() < behaviour.search_probability:
            query = rng.choice(_SEARCH_TERMS[category])
            self._track(PRODUCTS_SEARCHED, {"query": query}, at, context)
            at += rng.uniform(1, 4)
            self._page(
                "Search Results", f"/search?q={query.replace(' ', '+')}", "Search", at, context
            )
            list_id = "search_results"
        else:
            self._page("Category", f"/categories/{_slug(category)}", category, at, context)
            list_id = f"category-{_slug(category)}"
        at += rng.uniform(1, 4)
        self._track(
            PRODUCT_LIST_VIEWED,
            {
                "list_id": list_id,
                "category": category,
                "products": [
                    {"product_id": p.product_id, "sku": p.sku, "name": p.name,
                     "price": p.price, "category": p.category, "position": position}
                    for position, p in enumerate(listed, start=1)
                ],
            },
            at,
            context,
        )  # fmt: skip

        viewed: list[Product] = []
        for _ in range(rng.randint(*behaviour.views)):
            product = rng.choice(listed) if rng.random() < 0.6 else self._pick_product()
            # A single-page shop: the product page sends its track call, not a page call.
            at += rng.uniform(10, 90)
            self._track(PRODUCT_VIEWED, product.properties(), at, context)
            viewed.append(product)

        if outcome == "browse":
            return
        cart_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        basket = list(dict.fromkeys(viewed))[: rng.randint(*behaviour.basket)]
        cart: dict[Product, int] = {}
        for product in basket:
            quantity = 1 if rng.random() < 0.8 else 2
            cart[product] = quantity
            at += rng.uniform(5, 40)
            self._track(
                PRODUCT_ADDED, product.properties(cart_id=cart_id, quantity=quantity), at, context
            )
        if len(cart) > 1 and rng.random() < 0.2:
            product = next(iter(cart))
            at += rng.uniform(5, 30)
            self._track(
                PRODUCT_REMOVED,
                product.properties(cart_id=cart_id, quantity=cart.pop(product)),
                at,
                context,
            )
        at += rng.uniform(5, 30)
        self._page("Cart", "/cart", "Cart", at, context)
        at += rng.uniform(0.5, 2)
        cart_products = [
            product.properties(quantity=quantity, position=position)
            for position, (product, quantity) in enumerate(cart.items(), start=1)
        ]
        self._track(CART_VIEWED, {"cart_id": cart_id, "products": cart_products}, at, context)
        if outcome == "cart_abandoned":
            return

        self.orders += 1
        order_id = f"ORD-{self.store.seed}-{self.number:05d}-{self.orders:03d}"
        checkout_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        subtotal = round(sum(p.price * q for p, q in cart.items()), 2)
        coupon = None
        if promotion and rng.random() < behaviour.coupon_probability:
            coupon = promotion
        discount = round(subtotal * coupon.discount_percent / 100, 2) if coupon else 0.0
        revenue = round(subtotal - discount, 2)
        shipping = 0.0 if revenue >= 50 else 4.99
        tax = round(revenue * 0.08, 2)
        money = {
            "subtotal": subtotal,
            "discount": discount,
            "revenue": revenue,
            "shipping": shipping,
            "tax": tax,
            "currency": CURRENCY,
        }
        at += rng.uniform(5, 30)
        self._page("Checkout", "/checkout", "Checkout", at, context)
        at += rng.uniform(0.5, 2)
        self._track(
            CHECKOUT_STARTED,
            {"checkout_id": checkout_id, "order_id": order_id, "value": subtotal,
             **money, "products": cart_products},
            at,
            context,
        )  # fmt: skip
        at += rng.uniform(20, 90)
        shipping_method = rng.choice(["standard", "express", "pickup"])
        self._track(
            CHECKOUT_STEP_COMPLETED,
            {"checkout_id": checkout_id, "step": 1, "shipping_method": shipping_method},
            at,
            context,
        )
        if coupon:
            at += rng.uniform(5, 20)
            self._track(
                COUPON_APPLIED,
                {"checkout_id": checkout_id, "order_id": order_id, "cart_id": cart_id,
                 "coupon_id": coupon.coupon, "coupon_name": coupon.name, "discount": discount},
                at,
                context,
            )  # fmt: skip
        if outcome == "checkout_abandoned":
            return
        payment_method = rng.choice(["card", "card", "card", "paypal", "apple_pay"])
        at += rng.uniform(20, 90)
        self._track(
            PAYMENT_INFO_ENTERED,
            {"checkout_id": checkout_id, "order_id": order_id, "step": 2,
             "payment_method": payment_method},
            at,
            context,
        )  # fmt: skip
        at += rng.uniform(2, 10)
        self._track(
            CHECKOUT_STEP_COMPLETED,
            {"checkout_id": checkout_id, "step": 2, "payment_method": payment_method},
            at,
            context,
        )
        at += rng.uniform(2, 10)
        self._track(
            ORDER_COMPLETED,
            {"checkout_id": checkout_id, "order_id": order_id, "affiliation": STORE_NAME,
             "total": round(revenue + shipping + tax, 2), **money,
             "coupon": coupon.coupon if coupon else None, "products": cart_products},
            at,
            context,
        )  # fmt: skip
        at += rng.uniform(1, 3)
        self._page("Order Confirmation", "/checkout/thank-you", "Thank you", at, context)


class _Store:
    """The catalogue and promotions the customers' writers share."""

    def __init__(self, *, seed: int, days: int) -> None:
        rng = random.Random(f"journeyline-demo:{seed}:store")
        self.seed = seed
        self.products = _catalogue(rng)
        self.promotions = _promotions(rng, days)
        self.promotion_on = {
            day: promotion
            for promotion in self.promotions
            for day in range(promotion.first_day, promotion.last_day + 1)
        }
        self._by_category: dict[str, list[Product]] = {}
        for product in self.products:
            self._by_category.setdefault(product.category, []).append(product)
        self._weights: dict[tuple[str, float], tuple[list[Product], list[float]]] = {}

    def weighted(self, category: str, taste: float) -> tuple[list[Product], list[float]]:
        """Products of a category with cumulative weights: price to the power of taste."""
        key = (category, taste)
        if key not in self._weights:
            products = self._by_category[category]
            total, cumulative = 0.0, []
            for product in products:
                total += product.price**taste
                cumulative.append(total)
            self._weights[key] = (products, cumulative)
        return self._weights[key]


def generate_store(*, customers: int, days: int, seed: int, now: dt.datetime) -> DemoStore:
    """The demo store: ``customers`` customers' messages over the ``days`` before ``now``."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    store = _Store(seed=seed, days=days)
    calendar = _Calendar(now, days)
    slots = list(_SEGMENT_SLOTS)
    random.Random(f"journeyline-demo:{seed}:segments").shuffle(slots)
    demo_customers = []
    for number in range(1, customers + 1):
        segment = slots[number % len(slots)]
        writer = _CustomerWriter(store=store, number=number, segment=segment, calendar=calendar)
        writer.write()
        demo_customers.append(
            DemoCustomer(
                number=number,
                segment=segment,
                user_id=writer.user_id,
                anonymous_id=writer.anonymous_id,
                email=writer.email,
                timezone=writer.timezone,
                messages=writer.messages,
            )
        )
    return DemoStore(
        seed=seed,
        days=days,
        now=calendar.end,
        products=store.products,
        promotions=store.promotions,
        customers=demo_customers,
    )
