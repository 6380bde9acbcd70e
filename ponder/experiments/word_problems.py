"""Grade-school word problems written for ponder, with exact integer answers.

``data/word_problems.jsonl`` is this module's output, committed so that runs read a fixed
file. Each of the templates below is a hand-written problem whose numbers are drawn from a
seeded generator within ranges that keep every quantity a whole, positive number; the
answer is computed from the same numbers. Regenerate (and check nothing changed) with::

    python -m ponder.experiments.word_problems ponder/experiments/data/word_problems.jsonl
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COUNT = 250
DATA_FILE = Path(__file__).with_name("data") / "word_problems.jsonl"


@dataclass(frozen=True)
class Person:
    name: str
    subject: str  # she / he
    object: str  # her / him
    possessive: str  # her / his


_PEOPLE = [
    Person(name, *(("she", "her", "her") if pronoun == "f" else ("he", "him", "his")))
    for name, pronoun in [
        ("Ava", "f"), ("Liam", "m"), ("Maya", "f"), ("Noah", "m"), ("Zara", "f"), ("Omar", "m"),
        ("Lena", "f"), ("Ravi", "m"), ("Sofia", "f"), ("Kenji", "m"), ("Amara", "f"),
        ("Diego", "m"), ("Ines", "f"), ("Tomas", "m"), ("Priya", "f"), ("Felix", "m"),
    ]
]

Template = Callable[[random.Random], tuple[str, int]]
TEMPLATES: dict[str, Template] = {}


def template(function: Template) -> Template:
    TEMPLATES[function.__name__] = function
    return function


def _two_people(rng: random.Random) -> tuple[Person, Person]:
    first, second = rng.sample(_PEOPLE, 2)
    return first, second


@template
def change_from_a_bill(rng: random.Random) -> tuple[str, int]:
    p, count, price = rng.choice(_PEOPLE), rng.randint(2, 6), rng.randint(2, 9)
    bill = next(b for b in (10, 20, 50, 100) if b > count * price)
    return (f"{p.name} buys {count} notebooks at ${price} each and pays with a ${bill} bill. "
            f"How many dollars of change does {p.subject} get?", bill - count * price)


@template
def apples_left(rng: random.Random) -> tuple[str, int]:
    p, given, eaten = rng.choice(_PEOPLE), rng.randint(3, 15), rng.randint(1, 5)
    picked = given + eaten + rng.randint(1, 20)
    return (f"{p.name} picks {picked} apples. {p.subject.capitalize()} gives {given} to a neighbour and eats "
            f"{eaten}. How many apples does {p.subject} have left?", picked - given - eaten)


@template
def full_egg_boxes(rng: random.Random) -> tuple[str, int]:
    size, boxes = rng.choice((6, 10, 12)), rng.randint(3, 20)
    eggs = size * boxes + rng.randint(0, size - 1)
    return (f"A farm packs eggs in boxes of {size}. Today the hens laid {eggs} eggs. "
            "How many boxes can be filled completely?", boxes)


@template
def eggs_left_over(rng: random.Random) -> tuple[str, int]:
    size, boxes = rng.choice((6, 10, 12)), rng.randint(3, 20)
    extra = rng.randint(1, size - 1)
    return (f"A farm packs eggs in boxes of {size}. Today the hens laid {size * boxes + extra} "
            "eggs. After filling as many boxes as possible, how many eggs are left over?", extra)


@template
def train_distance(rng: random.Random) -> tuple[str, int]:
    speed, hours = rng.choice(range(40, 130, 5)), rng.randint(2, 6)
    return (f"A train travels at {speed} kilometres per hour for {hours} hours. "
            "How many kilometres does it travel?", speed * hours)


@template
def reading_hours(rng: random.Random) -> tuple[str, int]:
    p, minutes = rng.choice(_PEOPLE), rng.choice((10, 12, 15, 20, 30, 40, 45))
    days = 60 // math.gcd(minutes, 60) * rng.randint(1, 4)
    return (f"{p.name} reads for {minutes} minutes every day for {days} days. "
            f"How many hours does {p.subject} read in total?", minutes * days // 60)


@template
def weeks_of_saving(rng: random.Random) -> tuple[str, int]:
    p, have, weekly, weeks = rng.choice(_PEOPLE), rng.randint(10, 60), rng.randint(5, 15), rng.randint(3, 12)
    return (f"{p.name} wants a bike that costs ${have + weekly * weeks}. {p.subject.capitalize()} has ${have} "
            f"and saves ${weekly} each week. How many weeks will it take until {p.subject} can "
            "buy the bike?", weeks)


@template
def class_groups(rng: random.Random) -> tuple[str, int]:
    size, groups = rng.randint(3, 6), rng.randint(4, 8)
    return (f"A class of {size * groups} students is split into groups of {size}. "
            "How many groups are there?", groups)


@template
def days_to_finish_a_book(rng: random.Random) -> tuple[str, int]:
    p, per_day, days, read = rng.choice(_PEOPLE), rng.randint(10, 30), rng.randint(3, 12), rng.randint(20, 120)
    return (f"A book has {read + per_day * days} pages. {p.name} has already read {read} pages "
            f"and reads {per_day} pages a day. How many more days does {p.subject} need to "
            "finish the book?", days)


@template
def garden_area(rng: random.Random) -> tuple[str, int]:
    length, width = rng.randint(5, 30), rng.randint(3, 20)
    return (f"A garden is {length} metres long and {width} metres wide. "
            "What is its area in square metres?", length * width)


@template
def fence_length(rng: random.Random) -> tuple[str, int]:
    length, width = rng.randint(10, 80), rng.randint(5, 50)
    return (f"A rectangular field is {length} metres long and {width} metres wide. How many "
            "metres of fence are needed to go all the way around it?", 2 * (length + width))


@template
def sister_age(rng: random.Random) -> tuple[str, int]:
    p, age, older, years = rng.choice(_PEOPLE), rng.randint(4, 15), rng.randint(2, 9), rng.randint(3, 20)
    return (f"{p.name} is {age} years old. {p.subject.capitalize()} has a sister who is {older} years older. "
            f"How old will the sister be in {years} years?", age + older + years)


@template
def shared_cookies(rng: random.Random) -> tuple[str, int]:
    p, trays, per_tray = rng.choice(_PEOPLE), rng.randint(2, 5), rng.choice((6, 8, 10, 12, 15, 18, 20, 24))
    friends = rng.choice([f for f in range(2, 13) if trays * per_tray % f == 0])
    return (f"{p.name} bakes {trays} trays of {per_tray} cookies and shares all of them equally "
            f"among {friends} friends. How many cookies does each friend get?",
            trays * per_tray // friends)


@template
def bus_passengers(rng: random.Random) -> tuple[str, int]:
    start, off1, on1 = rng.randint(15, 40), rng.randint(2, 10), rng.randint(1, 12)
    off2 = rng.randint(1, start - off1 + on1 - 1)
    return (f"A bus leaves the station with {start} passengers. At the first stop {off1} people "
            f"get off and {on1} get on. At the second stop {off2} people get off. "
            "How many passengers are on the bus now?", start - off1 + on1 - off2)


@template
def pencils_and_eraser(rng: random.Random) -> tuple[str, int]:
    price, count, eraser = rng.randint(15, 60), rng.randint(2, 9), rng.randint(20, 90)
    return (f"Pencils cost {price} cents each and an eraser costs {eraser} cents. How many "
            f"cents do {count} pencils and one eraser cost together?", price * count + eraser)


@template
def split_by_hours(rng: random.Random) -> tuple[str, int]:
    (a, b), rate = _two_people(rng), rng.randint(6, 15)
    hours_a, hours_b = rng.randint(2, 8), rng.randint(2, 8)
    return (f"{a.name} and {b.name} earn ${rate * (hours_a + hours_b)} together for mowing lawns. "
            f"{a.name} worked {hours_a} hours and {b.name} worked {hours_b} hours, and they split "
            f"the money by hours worked. How many dollars does {a.name} get?", rate * hours_a)


@template
def evening_temperature(rng: random.Random) -> tuple[str, int]:
    morning, warmer, cooler = rng.randint(5, 20), rng.randint(3, 12), rng.randint(2, 10)
    return (f"In the morning it was {morning} degrees. By noon it had warmed up by {warmer} "
            f"degrees, and by evening it had dropped {cooler} degrees from noon. What was the "
            "temperature in the evening, in degrees?", morning + warmer - cooler)


@template
def twice_as_many_stickers(rng: random.Random) -> tuple[str, int]:
    (a, b), stickers = _two_people(rng), rng.randint(8, 60)
    return (f"{a.name} has {stickers} stickers. {b.name} has twice as many stickers as "
            f"{a.name}. How many stickers do they have together?", 3 * stickers)


@template
def cakes_over_three_days(rng: random.Random) -> tuple[str, int]:
    monday, more = rng.randint(10, 40), rng.randint(2, 20)
    more += (monday + more) % 2  # Tuesday's sales are even, so Wednesday's half is whole
    tuesday = monday + more
    return (f"A bakery sold {monday} cakes on Monday. On Tuesday it sold {more} more than on "
            "Monday, and on Wednesday half as many as on Tuesday. How many cakes did it sell "
            "over the three days?", monday + tuesday + tuesday // 2)


@template
def parking_lot_wheels(rng: random.Random) -> tuple[str, int]:
    cars, bikes = rng.randint(3, 30), rng.randint(2, 20)
    return (f"A parking lot has {cars} cars and {bikes} bicycles. How many wheels are there in "
            "total?", 4 * cars + 2 * bikes)


@template
def farm_legs(rng: random.Random) -> tuple[str, int]:
    chickens, cows = rng.randint(4, 30), rng.randint(2, 15)
    return (f"A farmer has {chickens} chickens and {cows} cows. How many legs do the animals "
            "have altogether?", 2 * chickens + 4 * cows)


@template
def pens_unit_price(rng: random.Random) -> tuple[str, int]:
    price, bought, wanted = rng.randint(2, 9), rng.randint(2, 6), rng.randint(7, 15)
    return (f"{bought} identical pens cost ${price * bought}. How many dollars do {wanted} of "
            "the same pens cost?", price * wanted)


@template
def oranges_left(rng: random.Random) -> tuple[str, int]:
    boxes, per_box = rng.randint(3, 12), rng.choice((12, 15, 20, 24, 25, 30))
    sold = rng.randint(per_box, boxes * per_box - 1)
    return (f"A shop receives {boxes} boxes of oranges with {per_box} oranges in each box. "
            f"It sells {sold} oranges. How many oranges are left?", boxes * per_box - sold)


@template
def allowance_saved(rng: random.Random) -> tuple[str, int]:
    p, spend, save, weeks = rng.choice(_PEOPLE), rng.randint(2, 8), rng.randint(2, 10), rng.randint(3, 10)
    return (f"{p.name} gets ${spend + save} of pocket money a week and spends ${spend} of it "
            f"every week. How many dollars has {p.subject} saved after {weeks} weeks?", save * weeks)


@template
def weekend_pay(rng: random.Random) -> tuple[str, int]:
    p, rate, saturday, sunday = rng.choice(_PEOPLE), rng.randint(8, 20), rng.randint(2, 8), rng.randint(2, 8)
    return (f"{p.name} earns ${rate} an hour. {p.subject.capitalize()} works {saturday} hours on Saturday "
            f"and {sunday} hours on Sunday. How many dollars does {p.subject} earn over the "
            "weekend?", rate * (saturday + sunday))


@template
def museum_tickets(rng: random.Random) -> tuple[str, int]:
    adult, child = rng.randint(10, 25), rng.randint(4, 9)
    adults, children = rng.randint(1, 4), rng.randint(1, 6)
    return (f"Museum tickets cost ${adult} for an adult and ${child} for a child. How many "
            f"dollars do {adults} adult tickets and {children} child tickets cost?",
            adult * adults + child * children)


@template
def tank_fill_minutes(rng: random.Random) -> tuple[str, int]:
    rate, minutes = rng.choice((5, 8, 10, 12, 15, 20, 25)), rng.randint(6, 40)
    return (f"A water tank holds {rate * minutes} litres. A hose fills it at {rate} litres per "
            "minute. How many minutes does it take to fill the empty tank?", minutes)


@template
def even_out_marbles(rng: random.Random) -> tuple[str, int]:
    (a, b), fewer, gap = _two_people(rng), rng.randint(5, 40), 2 * rng.randint(2, 15)
    return (f"{a.name} has {fewer + gap} marbles and {b.name} has {fewer} marbles. How many "
            f"marbles must {a.name} give to {b.name} so that they both have the same number?",
            gap // 2)


@template
def stamps_from_italy(rng: random.Random) -> tuple[str, int]:
    p, sixths = rng.choice(_PEOPLE), rng.randint(3, 20)
    return (f"{p.name} has {6 * sixths} stamps. One third of them are from Spain, and a quarter "
            "of the rest are from Italy. How many of the stamps are from Italy?", sixths)


@template
def sale_price(rng: random.Random) -> tuple[str, int]:
    price, discount = 20 * rng.randint(2, 10), rng.choice((10, 15, 20, 25, 30, 40, 50))
    return (f"A jacket costs ${price}. It is on sale for {discount}% off. What is the sale "
            "price in dollars?", price * (100 - discount) // 100)


@template
def average_score(rng: random.Random) -> tuple[str, int]:
    p, first, second = rng.choice(_PEOPLE), rng.randint(60, 99), rng.randint(60, 99)
    third = rng.randint(60, 97)
    third += -(first + second + third) % 3
    return (f"{p.name} scored {first}, {second} and {third} on three tests. What is "
            f"{p.possessive} average score?", (first + second + third) // 3)


@template
def stairs_climbed(rng: random.Random) -> tuple[str, int]:
    p, steps, floors = rng.choice(_PEOPLE), rng.randint(12, 22), rng.randint(2, 9)
    return (f"There are {steps} steps between one floor and the next in a building. How many "
            f"steps does {p.name} climb going up {floors} floors?", steps * floors)


@template
def movie_minutes(rng: random.Random) -> tuple[str, int]:
    hours, minutes = rng.randint(1, 3), rng.randint(5, 55)
    return (f"A movie is {hours} hour{'s' * (hours > 1)} and {minutes} minutes long. How many "
            "minutes long is it?", 60 * hours + minutes)


@template
def juice_packs(rng: random.Random) -> tuple[str, int]:
    p, size = rng.choice(_PEOPLE), rng.choice((4, 6, 8, 12))
    needed = size * rng.randint(2, 9) + rng.randint(1, size - 1)
    return (f"Juice comes in packs of {size} bottles. {p.name} needs {needed} bottles for a "
            f"party. How many packs must {p.subject} buy?", math.ceil(needed / size))


@template
def free_seats(rng: random.Random) -> tuple[str, int]:
    rows, per_row = rng.randint(8, 25), rng.randint(10, 30)
    taken = rng.randint(rows, rows * per_row - 1)
    return (f"A hall has {rows} rows with {per_row} seats in each row. {taken} seats are taken. "
            "How many seats are free?", rows * per_row - taken)


@template
def walking_to_school(rng: random.Random) -> tuple[str, int]:
    p, km, days = rng.choice(_PEOPLE), rng.randint(1, 4), rng.randint(5, 20)
    return (f"{p.name} walks {km} kilometres to school and the same way back home every school "
            f"day. How many kilometres does {p.subject} walk in {days} school days?", 2 * km * days)


@template
def tomato_harvest(rng: random.Random) -> tuple[str, int]:
    p, rows, plants, tomatoes = rng.choice(_PEOPLE), rng.randint(2, 8), rng.randint(3, 10), rng.randint(4, 12)
    return (f"{p.name} plants {rows} rows of tomatoes with {plants} plants in each row. Each "
            f"plant gives {tomatoes} tomatoes. How many tomatoes does {p.subject} harvest in all?",
            rows * plants * tomatoes)


@template
def money_after_shopping(rng: random.Random) -> tuple[str, int]:
    p, book, pen = rng.choice(_PEOPLE), rng.randint(6, 25), rng.randint(1, 5)
    money = book + pen + rng.randint(1, 30)
    return (f"{p.name} has ${money}. {p.subject.capitalize()} buys a book for ${book} and a pen for ${pen}. "
            f"How many dollars does {p.subject} have left?", money - book - pen)


@template
def flour_for_cookies(rng: random.Random) -> tuple[str, int]:
    cups, batch, batches = rng.randint(2, 5), rng.choice((12, 18, 20, 24, 30)), rng.randint(2, 6)
    return (f"A recipe needs {cups} cups of flour for {batch} cookies. How many cups of flour are "
            f"needed for {batch * batches} cookies?", cups * batches)


@template
def pool_evaporation(rng: random.Random) -> tuple[str, int]:
    loss, days = rng.randint(20, 90), rng.randint(3, 14)
    volume = loss * days + 50 * rng.randint(10, 100)
    return (f"A pool holds {volume} litres of water and loses {loss} litres a day to evaporation. "
            f"How many litres are left after {days} days?", volume - loss * days)


@template
def books_on_shelves(rng: random.Random) -> tuple[str, int]:
    shelves, per_shelf, removed = rng.randint(3, 9), rng.randint(12, 40), rng.randint(5, 30)
    return (f"A library has {shelves} shelves with {per_shelf} books on each. Then {removed} "
            "books are lent out. How many books are still on the shelves?",
            shelves * per_shelf - removed)


@template
def price_difference(rng: random.Random) -> tuple[str, int]:
    (a, b), each, count_a, count_b = _two_people(rng), rng.randint(2, 12), rng.randint(5, 15), rng.randint(1, 4)
    return (f"{a.name} buys {count_a} comics and {b.name} buys {count_b} comics. Every comic "
            f"costs ${each}. How many more dollars does {a.name} spend than {b.name}?",
            each * (count_a - count_b))


def word_problems(count: int = COUNT) -> list[dict[str, str]]:
    """``count`` problems, the templates taken in turn, each drawn from its own seed."""
    names = sorted(TEMPLATES)
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    for index in range(count):
        name = names[index % len(names)]
        rng = random.Random(f"word-problems:{index}")
        question, answer = TEMPLATES[name](rng)
        while question in seen:  # another draw of the same template, never a repeat
            question, answer = TEMPLATES[name](rng)
        if answer <= 0:
            raise ValueError(f"template {name} gave answer {answer} for {question!r}")
        seen.add(question)
        problems.append({"id": f"wp-{index:03d}", "question": question, "answer": str(answer),
                         "template": name})
    return problems


def write(path: Path, count: int = COUNT) -> None:
    with path.open("w", encoding="utf-8") as out:
        for problem in word_problems(count):
            out.write(json.dumps(problem) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA_FILE)
